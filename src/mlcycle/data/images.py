"""Reading images of any size and mode into uint8 arrays with a fixed number of channels.

PIL reads every format; grey and RGB JPEGs are decoded by torchvision's libjpeg-turbo instead,
which gives the same pixels (PIL still reads the header, the EXIF orientation and any error's
reason) in less CPU time: 1.4-1.6x less at 64x64, 1.1-1.3x at 256x256, 1.05-1.15x at 512x512
(``benchmarks/decode.py``). PNGs stay with PIL: torchvision's PNG decoder is hardly faster and
crashes the process on a corrupt PNG."""

from __future__ import annotations

import functools
import hashlib
import io
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

from mlcycle.edge.decode import IMAGE_EXTENSIONS, to_array

GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


class UnreadableImage(Exception):
    """An image file that cannot be decoded; the message says why."""


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


# One conversion (EXIF rotation, 16-bit scaling, alpha over white, channels) for training, the
# server and predict.py on a device: mlcycle.edge imports nothing of mlcycle, so it is the home.
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


# ImageOps.exif_transpose's transpositions, on an HxWxC array (the tests compare all eight).
ORIENT: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}


@functools.cache
def _torchvision_io() -> Any | None:
    """``torchvision.io``, or None where it cannot be imported (PIL then decodes every JPEG)."""
    try:
        from torchvision import io as tvio
    except ImportError:
        return None
    return tvio if hasattr(tvio, "decode_jpeg") else None


def _decode_jpeg(data: bytes, img: Image.Image, channels: int) -> np.ndarray | None:
    """``img`` (opened, not loaded, from ``data``) decoded by torchvision, as ``convert`` would
    give it; None where PIL must decode: not a JPEG, CMYK, colour to grey (PIL's luma differs
    from libjpeg's), no torchvision decoder, or one refusing the data (PIL then says why)."""
    if img.format != "JPEG" or img.mode not in ("L", "RGB") or (img.mode, channels) == ("RGB", 1):
        return None
    tvio = _torchvision_io()
    if tvio is None:
        return None
    import torch

    mode = tvio.ImageReadMode.RGB if channels == 3 else tvio.ImageReadMode.GRAY
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torchvision 0.29 on its decoders
            tensor = tvio.decode_jpeg(
                torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=mode
            )
    except (RuntimeError, ValueError):
        return None
    array = tensor.permute(1, 2, 0).numpy()  # decode_jpeg returns a CHW view of HWC memory
    orient = ORIENT.get(img.getexif().get(ExifTags.Base.Orientation, 1))
    return np.ascontiguousarray(array if orient is None else orient(array))


def decode_image(data: bytes, channels: int, fast: bool = True) -> np.ndarray:
    """Decode image bytes fully into HxWxC uint8. Raises :class:`UnreadableImage` with the
    reason when it cannot. ``fast=False`` decodes JPEGs with PIL too (for comparisons)."""
    if not data:
        raise UnreadableImage("zero bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                decoded = _decode_jpeg(data, img, channels) if fast else None
                if decoded is not None:
                    return decoded
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
