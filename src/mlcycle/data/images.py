"""Reading images of any size and mode into uint8 arrays with a fixed number of channels."""

from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path

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
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


class UnreadableImage(Exception):
    """An image file that cannot be decoded; the message says why."""


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def _to_8bit(img: Image.Image) -> Image.Image:
    """High bit-depth grayscale (I;16, I, F) scaled to 0..255 instead of clipped."""
    arr = np.asarray(img, dtype=np.float64)
    if img.mode.startswith("I;16"):
        arr = arr / 257.0
    else:
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), mode="L")


def convert(img: Image.Image, channels: int) -> np.ndarray:
    """Convert a PIL image of any mode to an HxWxC uint8 array with ``channels`` (1 or 3)."""
    img = ImageOps.exif_transpose(img)
    if img.mode.startswith("I") or img.mode == "F":
        img = _to_8bit(img)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        # Composite on white rather than exposing colours under transparent pixels.
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img.convert("RGBA"))
    img = img.convert("L" if channels == 1 else "RGB")
    arr = np.asarray(img, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def decode_image(data: bytes, channels: int) -> np.ndarray:
    """Decode image bytes fully. Raises :class:`UnreadableImage` with the reason when it cannot."""
    if not data:
        raise UnreadableImage("zero bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                img.load()
                return convert(img, channels)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise UnreadableImage(reason) from exc


def read_image(path: str | Path, channels: int) -> tuple[np.ndarray, str, int]:
    """Decode ``path`` and return ``(image, sha256 of the file, size in bytes)``."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise UnreadableImage("file not found") from exc
    except OSError as exc:
        raise UnreadableImage(exc.strerror or type(exc).__name__) from exc
    return decode_image(data, channels), hashlib.sha256(data).hexdigest(), len(data)


def load_image(path: str | Path, channels: int) -> np.ndarray:
    """Decode ``path`` fully. Raises :class:`UnreadableImage` with the reason when it cannot."""
    return read_image(path, channels)[0]


def guess_channels(paths: list[Path], sample: int = 64) -> int:
    """1 when every sampled image is grayscale, else 3."""
    for path in paths[:sample]:
        try:
            with Image.open(path) as img:
                mode = img.mode
        except (OSError, ValueError, SyntaxError):
            continue
        if mode not in GRAY_MODES:
            return 3
    return 1
