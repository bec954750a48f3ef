#!/usr/bin/env python
"""Classify images with an exported model; one JSON line per image.

    python scripts/predict.py RUN/export/model.onnx IMAGE_OR_FOLDER ... [--top-k 3]

Standalone on purpose, so it can be copied to a device: it needs numpy, pillow and onnxruntime
(or torch for a ``.ts`` model) and reads the preprocessing from ``model.json`` beside the model.
It does not import mlcycle, lightning, albumentations or OpenCV; the resize below reproduces
OpenCV's bilinear resize (what training used) bit for bit on uint8 images.

Exit code: 0 when every image was classified, 1 when some could not be read, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

IMAGE_EXTENSIONS = (
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".pgm",
)


class UsageError(Exception):
    """A problem with the command line or the model files: exit code 2."""


# --- decoding: the same as mlcycle.data.images -----------------------------------------------


def _to_8bit(img: Image.Image) -> Image.Image:
    """High bit-depth grayscale (I;16, I, F) scaled to 0..255 instead of clipped."""
    arr = np.asarray(img, dtype=np.float64)
    if img.mode.startswith("I;16"):
        arr = arr / 257.0
    else:
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), mode="L")


def to_array(img: Image.Image, channels: int) -> np.ndarray:
    """Any PIL mode to an HxWxC uint8 array with ``channels`` (1 or 3)."""
    img = ImageOps.exif_transpose(img)
    if img.mode.startswith("I") or img.mode == "F":
        img = _to_8bit(img)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img.convert("RGBA"))
    arr = np.asarray(img.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def load_image(path: Path, channels: int) -> np.ndarray:
    if path.stat().st_size == 0:
        raise ValueError("zero bytes")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as img:
            img.load()
            return to_array(img, channels)


# --- resize: OpenCV's INTER_LINEAR on uint8 (fixed point), as albumentations Resize calls it ---


def _taps(src: int, dst: int, clamp: bool) -> tuple[np.ndarray, ...]:
    """Source indices and 11-bit weights along one axis (half-pixel centres)."""
    pos = ((np.arange(dst, dtype=np.float64) + 0.5) * (src / dst) - 0.5).astype(np.float32)
    i0 = np.floor(pos).astype(np.int64)
    frac = pos - i0
    if clamp:  # OpenCV clamps columns; rows are clipped below but keep their weights
        frac[i0 < 0], i0[i0 < 0] = 0, 0
        edge = i0 >= src - 1
        frac[edge], i0[edge] = 0, src - 1
    i1 = np.clip(i0 + 1, 0, src - 1)
    i0 = np.clip(i0, 0, src - 1)
    w1 = np.rint(frac * 2048).astype(np.int64)
    w0 = np.rint((1 - frac) * 2048).astype(np.int64)
    return i0, i1, w0, w1


def resize_bilinear(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an HxWxC uint8 image like ``cv2.resize(img, (width, height), INTER_LINEAR)``."""
    if img.shape[:2] == (height, width):
        return img
    x0, x1, a0, a1 = _taps(img.shape[1], width, clamp=True)
    y0, y1, b0, b1 = _taps(img.shape[0], height, clamp=False)
    src = img.astype(np.int64)
    rows = src[:, x0] * a0[None, :, None] + src[:, x1] * a1[None, :, None]
    b0, b1 = b0[:, None, None], b1[:, None, None]
    # OpenCV's vertical pass in 16-bit fixed point: ((r0 >> 4) * b0 >> 16) + ... then >> 2.
    out = (((rows[y0] >> 4) * b0) >> 16) + (((rows[y1] >> 4) * b1) >> 16)
    return np.clip((out + 2) >> 2, 0, 255).astype(np.uint8)


def preprocess(image: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    """uint8 HxWxC -> float32 CxHxW, resized and normalized as in training."""
    image = resize_bilinear(image, int(spec["height"]), int(spec["width"]))
    mean = np.asarray(spec["mean"], dtype=np.float32) * 255
    std = np.asarray(spec["std"], dtype=np.float32) * 255
    x = (image.astype(np.float32) - mean) / std
    return np.ascontiguousarray(x.transpose(2, 0, 1))


# --- the model ------------------------------------------------------------------------------


def load_model(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """A function from a float32 NCHW batch to logits."""
    if path.suffix == ".onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x})[0]
    if path.suffix in (".ts", ".pt"):
        import torch

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(str(path), map_location="cpu").eval()

        def run(x: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return module(torch.from_numpy(x)).float().numpy()

        return run
    raise UsageError(f"model '{path}' is neither .onnx nor .ts; pass a file from RUN/export")


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def collect(inputs: list[str]) -> Iterator[Path]:
    """Files as given; folders expanded to their image files (recursively, sorted)."""
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            yield from sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in IMAGE_EXTENSIONS
                and not p.name.startswith(".")
            )
        else:
            yield path


def predict(
    model: Callable[[np.ndarray], np.ndarray],
    meta: dict[str, Any],
    paths: list[Path],
    top_k: int,
) -> list[dict[str, Any]]:
    """One result per path: the prediction, or ``error`` when the file cannot be read."""
    spec, names = meta["input"], meta["class_names"]
    results: list[dict[str, Any]] = []
    inputs, slots = [], []
    for path in paths:
        try:
            inputs.append(preprocess(load_image(path, int(spec["channels"])), spec))
            slots.append(len(results))
            results.append({"path": str(path)})
        except FileNotFoundError:
            results.append({"path": str(path), "error": "file not found"})
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            results.append({"path": str(path), "error": f"not a readable image: {reason}"})
    if inputs:
        probs = softmax(np.asarray(model(np.stack(inputs))))
        k = max(1, min(top_k, len(names)))
        for slot, p in zip(slots, probs, strict=True):
            order = np.argsort(-p, kind="stable")[:k]
            best = int(order[0])
            results[slot].update(
                {
                    "class": names[best],
                    "index": best,
                    "confidence": round(float(p[best]), 6),
                    "top_k": [
                        {"class": names[int(i)], "probability": round(float(p[i]), 6)}
                        for i in order
                    ],
                }
            )
    return results


def read_meta(model_path: Path) -> dict[str, Any]:
    meta_path = model_path.parent / "model.json"
    if not meta_path.is_file():
        raise UsageError(f"'{meta_path}' is missing; keep model.json beside the model")
    meta = json.loads(meta_path.read_text())
    if meta.get("format_version") != 1 or "input" not in meta:
        raise UsageError(f"'{meta_path}' is not an mlcycle model.json (format_version 1)")
    return meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="predict.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="model.onnx, model.int8.onnx or model.ts from RUN/export")
    parser.add_argument("inputs", nargs="+", help="image files or folders of images")
    parser.add_argument("--top-k", type=int, default=3, help="classes listed per image (3)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per model call (32)")
    args = parser.parse_args(argv)
    try:
        model_path = Path(args.model)
        if not model_path.is_file():
            raise UsageError(f"model '{model_path}' does not exist; pass a file from RUN/export")
        if args.top_k < 1 or args.batch_size < 1:
            raise UsageError("--top-k and --batch-size must be at least 1")
        meta = read_meta(model_path)
        model = load_model(model_path)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    paths = list(collect(args.inputs))
    if not paths:
        print(f"error: no image files in {' '.join(args.inputs)}", file=sys.stderr)
        return 2
    failed = 0
    for start in range(0, len(paths), args.batch_size):
        for result in predict(model, meta, paths[start : start + args.batch_size], args.top_k):
            failed += "error" in result
            print(json.dumps(result), flush=True)
    if failed:
        print(f"error: {failed} of {len(paths)} files could not be classified", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # e.g. piped into head: stop quietly
        sys.stderr.close()
        sys.exit(1)
