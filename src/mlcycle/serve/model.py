"""The served model: an exported ONNX graph read with ``model.json``'s preprocessing and output
description, through standalone.py's functions, so the server answers what ``predict.py`` prints.
"""

from __future__ import annotations

import base64
import hashlib
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from mlcycle.core.errors import UserError
from mlcycle.core.hashing import file_sha256
from mlcycle.serve import standalone
from mlcycle.serve.recording import summary
from mlcycle.serve.stats import image_stats

KINDS = ("classification", "segmentation", "detection")
# Pillow decoders for the usual image files only (no EPS, which runs Ghostscript).
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP", "PPM")
SPEC = ("channels", "height", "width", "mean", "std")  # what preprocessing reads
MAX_PIXELS = 40_000_000  # per image: a few kilobytes of PNG can decode to gigabytes


@dataclass
class Decoded:
    """One uploaded image, decoded and preprocessed."""

    name: str
    sha256: str
    width: int
    height: int
    mode: str
    stats: dict[str, float]
    x: np.ndarray = field(repr=False)  # float32 CxHxW, the model's input


def is_batched(meta: dict[str, Any]) -> bool:
    """Whether the graph takes a batch; detection exports take exactly one image."""
    return str(meta["input"].get("shape", ["batch"])[0]) != "1"


class ServedModel:
    """Decoding, preprocessing and per-task reading of one exported ONNX model."""

    def __init__(
        self, path: Path, threads: int | None = None, top_k: int = 3, min_score: float = 0.5
    ) -> None:
        if not path.is_file():
            raise UserError(f"model '{path}' does not exist; pass RUN/export/model.onnx")
        if path.suffix != ".onnx":
            raise UserError(f"model '{path}' is not .onnx; the server runs ONNX Runtime only")
        try:
            self.meta = standalone.read_meta(path)
        except (standalone.UsageError, ValueError) as exc:
            raise UserError(str(exc)) from exc
        self.kind = standalone.output_kind(self.meta)
        if self.kind not in KINDS:
            raise UserError(
                f"'{path}' is a '{self.kind}' model; the server answers {', '.join(KINDS)}"
            )
        self.path, self.top_k, self.min_score = path, top_k, min_score
        missing = [k for k in ("class_names", "input") if not self.meta.get(k)]
        missing += [f"input.{k}" for k in SPEC if k not in (self.meta.get("input") or {})]
        if missing:
            raise UserError(f"model.json beside '{path}' lacks {', '.join(missing)}; export again")
        self.names: list[str] = [str(n) for n in self.meta["class_names"]]
        self.spec: dict[str, Any] = self.meta["input"]
        self.batched = is_batched(self.meta)
        self.version = file_sha256(path)
        try:
            self.run = standalone.load_model(path, threads)
        except Exception as exc:  # onnxruntime's errors name the problem
            raise UserError(f"ONNX Runtime cannot load '{path}': {exc}") from exc

    # --- input ------------------------------------------------------------------------------

    def decode(self, name: str, data: bytes) -> Decoded:
        """Bytes of an image file to a model input; ValueError says why it cannot be read."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data), formats=FORMATS) as img:
                    if img.width * img.height > MAX_PIXELS:
                        raise ValueError(f"{img.width}x{img.height} is over {MAX_PIXELS} pixels")
                    img.load()
                    mode = img.mode
                    image = standalone.to_array(img, int(self.spec["channels"]))
        except UnidentifiedImageError as exc:
            raise ValueError(f"not a readable image: not a {', '.join(FORMATS)} file") from exc
        except Exception as exc:  # Pillow's decoders raise many types on a broken file
            reason = " ".join(str(exc).split())[:200] or type(exc).__name__
            raise ValueError(f"not a readable image: {reason}") from exc
        height, width = image.shape[:2]
        return Decoded(
            name=name,
            sha256=hashlib.sha256(data).hexdigest(),
            width=width,
            height=height,
            mode=mode,
            stats=image_stats(image),
            x=standalone.preprocess(image, self.spec),
        )

    # --- output -----------------------------------------------------------------------------

    def process(self, items: list[Decoded]) -> list[dict[str, Any]]:
        """The answers for a batch of decoded images, one dict per image (the batcher's call)."""
        if self.kind == "detection":  # one image per call; its outputs have no batch axis
            return [self._boxes(self.run(d.x[None]), d) for d in items]
        if not self.batched:
            per_image = [[np.asarray(o)[0] for o in self.run(d.x[None])] for d in items]
        else:
            batch = [np.asarray(o) for o in self.run(np.stack([d.x for d in items]))]
            per_image = [[o[i] for o in batch] for i in range(len(items))]
        if self.kind == "classification":
            probs = standalone.softmax(np.stack([out[0] for out in per_image]))
            return [standalone.top_classes(p, self.names, self.top_k) for p in probs]
        return [self._mask(out[0], d) for out, d in zip(per_image, items, strict=True)]

    def _mask(self, logits: np.ndarray, item: Decoded) -> dict[str, Any]:
        mask = standalone.full_mask(logits.argmax(axis=0).astype(np.uint8), item.height, item.width)
        png = io.BytesIO()
        Image.fromarray(mask).save(png, format="PNG")
        return {
            "size": [item.width, item.height],
            "mask_png": base64.b64encode(png.getvalue()).decode("ascii"),
            "class_shares": standalone.class_shares(mask, self.names),
        }

    def _boxes(self, outputs: list[np.ndarray], item: Decoded) -> dict[str, Any]:
        found = standalone.boxes_found(outputs, self.meta, item.height, item.width, self.min_score)
        return {"size": [item.width, item.height], "boxes": found}


def row_summary(kind: str, result: dict[str, Any]) -> tuple[str | None, float | None, Any]:
    """A store row's ``predicted``, ``confidence`` and ``top_k``: the columns predict.py's
    ``--db`` writes (``recording.summary``, which knows detections by that name)."""
    if kind == "detection":
        return summary({"detections": result["boxes"]})
    return summary(result)


def top_class(kind: str, result: dict[str, Any]) -> str:
    """The class an answer counts for in the metrics: the class, the largest share, the best box."""
    if kind == "classification":
        return result["class"]
    if kind == "segmentation":
        return max(result["class_shares"].items(), key=lambda kv: kv[1])[0]
    boxes = result["boxes"]
    return max(boxes, key=lambda box: box["score"])["class"] if boxes else "(none)"
