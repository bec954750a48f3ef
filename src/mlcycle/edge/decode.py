"""Image files to model inputs, as training made them: decoding any PIL mode to uint8 arrays,
OpenCV's bilinear resize bit for bit, and the normalization of ``model.json``'s ``input``.

Training decodes through these functions too (``mlcycle.data.images``), so a device that has
only numpy and pillow sees the pixels training saw. The resize reproduces what albumentations'
Resize (OpenCV's INTER_LINEAR on uint8) gave training, without OpenCV.
"""

from __future__ import annotations

import warnings
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
    """An image file as an HxWxC uint8 array; a decompression bomb is an error."""
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
    """Resize an HxWxC uint8 image like ``cv2.resize(img, (width, height), INTER_LINEAR)``;
    an NxHxWxC stack of equal-sized images is resized in one pass, each image the same."""
    if img.shape[-3:-1] == (height, width):
        return img
    x0, x1, a0, a1 = _taps(img.shape[-2], width, clamp=True)
    y0, y1, b0, b1 = _taps(img.shape[-3], height, clamp=False)
    # int32 holds every step (at most 255 * 2048 * 2 before the shifts), faster than int64.
    src = img.astype(np.int32)
    a0, a1 = a0.astype(np.int32)[:, None], a1.astype(np.int32)[:, None]
    rows = src.take(x0, axis=-2) * a0 + src.take(x1, axis=-2) * a1
    b0, b1 = b0.astype(np.int32)[:, None, None], b1.astype(np.int32)[:, None, None]
    # OpenCV's vertical pass in 16-bit fixed point: ((r0 >> 4) * b0 >> 16) + ... then >> 2.
    out = (((rows.take(y0, axis=-3) >> 4) * b0) >> 16) + (
        ((rows.take(y1, axis=-3) >> 4) * b1) >> 16
    )
    return np.clip((out + 2) >> 2, 0, 255).astype(np.uint8)


def preprocess(image: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    """uint8 HxWxC -> float32 CxHxW, resized and normalized as in training."""
    return preprocess_batch(image[None], spec)[0]


def preprocess_batch(images: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    """uint8 NxHxWxC (equal-sized images) -> float32 NxCxHxW, each image as :func:`preprocess`
    makes it, in one numpy pass (a server's batch)."""
    images = resize_bilinear(images, int(spec["height"]), int(spec["width"]))
    mean = np.asarray(spec["mean"], dtype=np.float32) * 255
    std = np.asarray(spec["std"], dtype=np.float32) * 255
    x = (images.astype(np.float32) - mean) / std
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
