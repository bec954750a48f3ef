#!/usr/bin/env python
"""Decode time per image: PIL vs torchvision.io, JPEG and PNG, 64/256/512 px, grey and RGB.

    python benchmarks/decode.py [--repeats 5] [--budget 0.3]

Columns, in microseconds of CPU time per image (the median of ``--repeats`` rounds of
``--budget`` seconds each, one thread; CPU time, so that a busy machine changes the figures
less): grey images are decoded to 1 channel, RGB ones to 3. ``pil`` is ``decode_image(fast=False)`` (what mlcycle did before),
``torchvision`` is ``torchvision.io.decode_image`` from the bytes (``torch.frombuffer``) to a
contiguous HxWxC array, ``mlcycle`` is today's ``decode_image`` (torchvision for grey and RGB
JPEGs, PIL for the rest). ``ratio`` is pil / mlcycle. ``max diff`` is the largest absolute
pixel difference between torchvision's array and PIL's: 0 means the same pixels.

The images are smooth gradients with noise (photograph-like for the encoders), made in
memory; nothing is read from or written to disk. The last line checks, in a child process,
whether torchvision's PNG decoder survives a PNG with one flipped byte (PIL says "broken
data stream"): it is why PNGs stay with PIL.
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

from mlcycle.data.images import decode_image

SIZES = (64, 256, 512)
PNG_CRASH = """
import io, sys, warnings
import numpy as np, torch
from PIL import Image
from torchvision.io import decode_png
warnings.simplefilter("ignore")
out = io.BytesIO()
Image.fromarray(np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)).save(out, "PNG")
data = bytearray(out.getvalue())
data[len(data) // 2] ^= 0xFF
try:
    decode_png(torch.frombuffer(data, dtype=torch.uint8))
except RuntimeError as exc:
    print("raised", str(exc).splitlines()[0][:60])
"""


def photo(size: int, channels: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    planes = [np.sin(x / 7 + k) * 60 + np.cos(y / 5 + 2 * k) * 60 + 128 for k in range(channels)]
    noisy = np.stack(planes, -1) + rng.normal(0, 20, (size, size, channels))
    return np.clip(noisy, 0, 255).astype(np.uint8).squeeze()


def encode(array: np.ndarray, fmt: str) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return out.getvalue()


def torchvision_decode(data: bytes, channels: int) -> np.ndarray:
    from torchvision.io import ImageReadMode
    from torchvision.io import decode_image as tv_decode

    mode = ImageReadMode.RGB if channels == 3 else ImageReadMode.GRAY
    tensor = tv_decode(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=mode)
    return np.ascontiguousarray(tensor.permute(1, 2, 0).numpy())


def per_image_us(
    fns: dict[str, Callable[[], object]], budget: float, repeats: int
) -> dict[str, float]:
    """Median over ``repeats`` rounds of each function's CPU time per call, in a ``budget``-second
    loop; the functions take turns in each round, so a busy machine slows them alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        fn()  # warm-up: imports, caches
    for _ in range(repeats):
        for name, fn in fns.items():
            calls, start = 0, time.process_time()
            while (elapsed := time.process_time() - start) < budget:
                fn()
                calls += 1
            times[name].append(elapsed / calls * 1e6)
    return {name: statistics.median(t) for name, t in times.items()}


def png_crash_check() -> str:
    done = subprocess.run(
        [sys.executable, "-c", PNG_CRASH], capture_output=True, text=True, timeout=60
    )
    if done.returncode < 0:
        return f"torchvision decode_png on a PNG with one flipped byte: killed by signal {-done.returncode}"
    return f"torchvision decode_png on a PNG with one flipped byte: exit {done.returncode}, {done.stdout.strip()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=float, default=0.3, help="CPU seconds per timing.")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as in a DataLoader worker
    warnings.simplefilter("ignore", DeprecationWarning)  # torchvision 0.29 on its decoders
    header = f"{'format':<6} {'size':>4} {'image':<5} {'pil':>8} {'torchvision':>11} {'mlcycle':>8} {'ratio':>6} {'max diff':>8}"
    print(header)
    print("-" * len(header))
    for fmt in ("JPEG", "PNG"):
        for size in SIZES:
            for channels, name in ((1, "grey"), (3, "RGB")):
                data = encode(photo(size, channels), fmt)
                us = per_image_us(
                    {
                        "pil": lambda d=data, c=channels: decode_image(d, c, fast=False),
                        "torchvision": lambda d=data, c=channels: torchvision_decode(d, c),
                        "mlcycle": lambda d=data, c=channels: decode_image(d, c),
                    },
                    args.budget,
                    args.repeats,
                )
                theirs = torchvision_decode(data, channels).astype(int)
                diff = np.abs(theirs - decode_image(data, channels, fast=False)).max()
                print(
                    f"{fmt:<6} {size:>4} {name:<5} {us['pil']:>8.0f} {us['torchvision']:>11.0f} "
                    f"{us['mlcycle']:>8.0f} {us['pil'] / us['mlcycle']:>6.2f} {diff:>8}"
                )
    print(png_crash_check())
    return 0


if __name__ == "__main__":
    sys.exit(main())
