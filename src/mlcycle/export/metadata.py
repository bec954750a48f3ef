"""``model.json``: everything a device needs to feed the model and read its output."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlcycle.core.errors import UserError
from mlcycle.core.record import package_versions
from mlcycle.export.onnx_export import INPUT_NAME

FORMAT_VERSION = 1
PACKAGES = ("mlcycle", "torch", "onnx", "onnxruntime", "onnxscript", "numpy")
REQUIRED = ("class_names", "channels", "image_size", "mean", "std")


def library_versions() -> dict[str, str]:
    return package_versions(PACKAGES)


def input_spec(data_info: dict[str, Any]) -> dict[str, Any]:
    """The preprocessing of training, from the run's ``data.json``."""
    missing = [key for key in REQUIRED if key not in data_info]
    if missing:
        raise UserError(
            f"the run's data.json lacks {', '.join(missing)}; retrain with this mlcycle version"
        )
    channels = int(data_info["channels"])
    height, width = (int(v) for v in data_info["image_size"])
    return {
        "name": INPUT_NAME,
        "dtype": "float32",
        "layout": "NCHW",
        "shape": ["batch", channels, height, width],
        "channels": channels,
        "color_mode": "L" if channels == 1 else "RGB",
        "height": height,
        "width": width,
        "resize": {
            "method": "bilinear",
            "keep_aspect_ratio": False,
            "reference": "cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR) "
            "on the uint8 image, as albumentations Resize does in training",
            "description": data_info.get("resize", "stretch to image_size, bilinear"),
        },
        "image_mode": "EXIF orientation applied; alpha composited on white; 16-bit and float "
        f"grayscale scaled to 8 bits; then converted to {'L' if channels == 1 else 'RGB'}",
        "value_range": data_info.get(
            "input_range", "uint8 0..255 scaled to 0..1, then (x - mean) / std"
        ),
        "scale": 1 / 255,
        "mean": [float(v) for v in data_info["mean"]],
        "std": [float(v) for v in data_info["std"]],
        # the pretrained weights' own input, when the run started from named weights
        **{k: data_info[k] for k in ("weights_preprocessing",) if k in data_info},
    }


def build_model_json(
    *,
    config: dict[str, Any],
    data_info: dict[str, Any],
    metrics: dict[str, Any],
    checkpoint: Path,
    checkpoint_sha256: str,
    files: dict[str, str],
    opset: int | None,
    exporter: str | None,
    hparams: dict[str, Any],
    output: dict[str, Any],
    dynamic_axes: dict[str, dict[int, str]],
    task: str,
) -> dict[str, Any]:
    class_path = str(config["model"]["class_path"])  # export.py imported it already
    class_names = [str(c) for c in data_info["class_names"]]
    return {
        "format_version": FORMAT_VERSION,
        "task": task,
        "task_class": class_path,
        "arch": hparams.get("arch"),
        "class_names": class_names,
        "num_classes": len(class_names),
        "input": input_spec(data_info),
        "output": output,
        "files": files,
        "onnx": {
            "opset": opset,
            "exporter": exporter,
            "dynamic_axes": {name: sorted(axes) for name, axes in dynamic_axes.items()},
        }
        if opset is not None
        else None,
        "validation_metrics": {
            k: v for k, v in metrics.items() if k.startswith("val/") or k == "best_epoch"
        },
        "checkpoint": {"file": checkpoint.name, "sha256": checkpoint_sha256},
        "versions": library_versions(),
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
