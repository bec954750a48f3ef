#!/usr/bin/env python
"""Images per second of ``validate_data.py`` against plainly decoding the same files with PIL.

    python benchmarks/validate_speed.py [--images 3000] [--size 64] [--rounds 3]

Writes ``--images`` random-texture PNGs (3 classes) into a temporary folder, then in alternating
rounds times (a) ``PIL.Image.open(path).load()`` over every file, one thread, and (b) the whole
of validate_data (read, sha256, decode, checks, dHash, all pairs, report and quarantine list).
Prints the best round of each, images/second and the ratio (target: >= 300 images/s).
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
from PIL import Image

from mlcycle.quality.findings import Thresholds
from mlcycle.quality.validate import validate


def write_images(root: Path, count: int, size: int) -> list[Path]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    paths = []
    for i in range(count):
        folder = root / f"class_{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        fx, fy, phase = rng.uniform(1, 6, 3), rng.uniform(1, 6, 3), rng.uniform(0, 6, 3)
        waves = np.sin(2 * np.pi * (fx * xx[..., None] + fy * yy[..., None]) + phase)
        pixels = np.clip(128 + 90 * waves + rng.normal(0, 8, (size, size, 3)), 0, 255)
        path = folder / f"{i:05d}.png"
        Image.fromarray(pixels.astype(np.uint8)).save(path)
        paths.append(path)
    return paths


def plain_pil(paths: list[Path]) -> float:
    start = time.perf_counter()
    for path in paths:
        with Image.open(path) as img:
            img.load()
    return time.perf_counter() - start


def validate_data(root: Path, out: Path) -> float:
    start = time.perf_counter()
    with redirect_stdout(io.StringIO()):
        validate(["configs/image_folder.yaml"], {"root": str(root)}, Thresholds(), out)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.chdir(Path(__file__).resolve().parents[1])  # configs/ lives in the repository root
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "images"
        paths = write_images(root, args.images, args.size)
        validate_data(root, Path(tmp) / "warmup")  # imports, page cache
        base, ours = [], []
        for r in range(args.rounds):
            base.append(plain_pil(paths))
            ours.append(validate_data(root, Path(tmp) / f"report{r}"))
    n = len(paths)
    b, v = n / min(base), n / min(ours)
    print(f"{n} PNGs of {args.size}x{args.size} RGB, {os.cpu_count()} CPUs, best of {args.rounds}")
    print(f"{'':<34} {'images/s':>9}")
    print(f"{'PIL open + load (one thread)':<34} {b:>9.0f}")
    print(f"{'validate_data (all checks)':<34} {v:>9.0f}")
    print(
        f"ratio validate / plain PIL: {v / b:.2f}   target >= 300 images/s: {'met' if v >= 300 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
