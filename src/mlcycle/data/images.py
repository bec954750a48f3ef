"""Reading images of any size and mode into uint8 arrays with a fixed number of channels."""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from mlcycle.serve.standalone import IMAGE_EXTENSIONS, to_array

GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


class UnreadableImage(Exception):
    """An image file that cannot be decoded; the message says why."""


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


# One conversion (EXIF rotation, 16-bit scaling, alpha over white, channels) for training, the
# server and predict.py on a device: standalone.py imports nothing of mlcycle, so it is the home.
convert = to_array


IMAGE_SIGNATURES = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"II*\x00", b"MM\x00*", b"RIFF")
SIGNATURES = (
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"version https://git-lfs", "a Git LFS pointer, not the image; run git lfs pull"),
    (b"\x00\x00\x00\x18ftypmp4", "an MP4 video"),
)


def what_it_is(data: bytes) -> str:
    """A few words on content that is not an image: ``content is text``, ``a PDF document``."""
    for signature, name in SIGNATURES:
        if data.startswith(signature):
            return name
    head = data[:512]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c in "\r\n\t" for c in text):
        if "/annex/objects/" in text:
            return "a git-annex pointer, not the image; run git annex get"
        return "content is text"
    return f"unknown content starting with bytes {head[:4].hex(' ')}"


def plain_reason(data: bytes, exc: BaseException) -> str:
    """Why ``data`` could not be decoded, in words a person can act on."""
    message = " ".join(str(exc).split())
    if isinstance(exc, UnidentifiedImageError):
        if data.startswith(IMAGE_SIGNATURES):  # a header cut short
            return f"truncated after {len(data)} bytes"
        return f"not an image ({what_it_is(data)})"
    if isinstance(exc, Image.DecompressionBombWarning | Image.DecompressionBombError):
        return f"too large to decode safely ({message})"
    if "truncated" in message.lower() or "broken data stream" in message.lower():
        return f"truncated after {len(data)} bytes"
    return f"cannot be decoded: {message or type(exc).__name__}"


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
        raise UnreadableImage(plain_reason(data, exc)) from exc


def read_bytes(path: str | Path) -> bytes:
    """A file's bytes; raises :class:`UnreadableImage` with a plain reason (a broken link
    names its target)."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        if path.is_symlink():
            raise UnreadableImage(f"broken link to '{os.readlink(path)}'") from exc
        raise UnreadableImage("file not found") from exc
    except PermissionError as exc:
        raise UnreadableImage("permission denied") from exc
    except IsADirectoryError as exc:
        raise UnreadableImage("a folder, not a file") from exc
    except OSError as exc:
        raise UnreadableImage(exc.strerror or type(exc).__name__) from exc


def read_image(path: str | Path, channels: int) -> tuple[np.ndarray, str, int]:
    """Decode ``path`` and return ``(image, sha256 of the file, size in bytes)``."""
    data = read_bytes(path)
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
