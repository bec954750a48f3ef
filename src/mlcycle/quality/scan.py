"""One pass over every file: bytes, content hash, decode, mode, size, brightness and a dHash.

Files are read, never written. The per-file work runs in a thread pool (PIL decodes and
hashlib hashes outside the GIL), with a progress bar on long scans.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from mlcycle.data.images import UnreadableImage, convert, plain_reason, read_bytes

# Modes the image loader converts faithfully to 1 or 3 channels.
SUPPORTED_MODES = {
    "1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr",
    "I", "I;16", "I;16B", "I;16L", "I;16N", "F",
}  # fmt: skip
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
THUMB = 16  # side of the grayscale thumbnail kept for EDA maps


@dataclass
class Facts:
    """What one file is. ``problem`` is ``zero_byte``, ``truncated``, ``unreadable`` or
    ``unsupported_mode``; ``decoded`` says whether training could use its pixels."""

    path: str
    bytes: int = 0
    sha256: str | None = None
    problem: str | None = None
    reason: str = ""
    decoded: bool = False
    format: str | None = None
    mode: str | None = None
    width: int = 0
    height: int = 0
    brightness: float = math.nan  # mean gray level, 0..255
    contrast: float = math.nan  # std of gray levels
    dhash: int = 0  # 64-bit difference hash of the grayscale image
    channel_mean: tuple[float, ...] | None = None  # RGB, 0..1 (detail scans only)
    channel_std: tuple[float, ...] | None = None
    thumb: np.ndarray | None = None  # THUMB x THUMB gray uint8, to confirm near duplicates


def _cut_container(data: bytes) -> bool:
    """True when a PNG lacks its IEND chunk or a JPEG its end-of-image marker."""
    if data.startswith(PNG_SIGNATURE):
        return b"IEND" not in data[-12:]
    if data.startswith(b"\xff\xd8"):
        return b"\xff\xd9" not in data[-64:]
    return False


def dhash(gray: Image.Image) -> int:
    """64-bit difference hash: is each of 8x8 cells brighter than its left neighbour."""
    small = np.asarray(gray.resize((9, 8), Image.Resampling.BOX), dtype=np.int16)
    bits = (small[:, 1:] > small[:, :-1]).ravel()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def inspect_file(path: str, detail: bool = False) -> Facts:
    """Read and check one file. Never raises for a bad file: the problem is in the result."""
    facts = Facts(path)
    try:
        data = read_bytes(path)
    except UnreadableImage as exc:
        facts.problem, facts.reason = "unreadable", str(exc)
        return facts
    facts.bytes, facts.sha256 = len(data), hashlib.sha256(data).hexdigest()
    if not data:
        facts.problem, facts.reason = "zero_byte", "zero bytes"
        return facts
    cut = _cut_container(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                facts.format, facts.mode = img.format, img.mode
                facts.width, facts.height = img.size
                img.load()
                _measure(img, facts, detail)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning) as exc:
        reason = plain_reason(data, exc)
        if facts.mode is not None and facts.mode not in SUPPORTED_MODES:
            facts.problem, facts.reason = "unsupported_mode", f"mode {facts.mode}: {reason}"
        else:
            truncated = cut or reason.startswith("truncated")
            facts.problem = "truncated" if truncated else "unreadable"
            facts.reason = reason
        facts.decoded = False
        return facts
    if cut:
        facts.problem = "truncated"
        facts.reason = f"truncated after {len(data)} bytes (no end-of-image marker)"
    elif facts.mode not in SUPPORTED_MODES:
        facts.problem, facts.reason = "unsupported_mode", f"mode {facts.mode}"
    return facts


def _measure(img: Image.Image, facts: Facts, detail: bool) -> None:
    gray_arr = convert(img, 1)[:, :, 0]  # the loader's own conversion (EXIF rotation, alpha)
    facts.height, facts.width = gray_arr.shape
    facts.decoded = True
    facts.brightness = float(gray_arr.mean())
    facts.contrast = float(gray_arr.std())
    gray = Image.fromarray(gray_arr)
    facts.dhash = dhash(gray)
    facts.thumb = np.asarray(gray.resize((THUMB, THUMB), Image.Resampling.BOX))
    if detail:
        rgb = convert(img, 3).reshape(-1, 3) / 255.0
        facts.channel_mean = tuple(round(float(v), 4) for v in rgb.mean(0))
        facts.channel_std = tuple(round(float(v), 4) for v in rgb.std(0))


def _inspect_many(paths: Sequence[str], detail: bool) -> list[Facts]:
    return [inspect_file(p, detail) for p in paths]


def scan(
    paths: Sequence[str | Path],
    detail: bool = False,
    workers: int | None = None,
    desc: str = "scanning images",
) -> list[Facts]:
    """:func:`inspect_file` over every path, in order, using ``workers`` threads."""
    paths = [str(p) for p in paths]
    workers = workers or min(8, os.cpu_count() or 1)
    chunk = max(16, min(256, len(paths) // (workers * 8) + 1))
    batches = [paths[i : i + chunk] for i in range(0, len(paths), chunk)]
    bar = tqdm(total=len(paths), desc=desc, unit="img", leave=False, disable=len(paths) < 500)
    results: list[Facts] = []
    try:
        if workers == 1 or len(batches) == 1:
            for batch in batches:
                results += _inspect_many(batch, detail)
                bar.update(len(batch))
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for facts in pool.map(_inspect_many, batches, [detail] * len(batches)):
                    results += facts
                    bar.update(len(facts))
    finally:
        bar.close()
    return results
