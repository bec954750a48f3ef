"""Random-texture JPEGs in class folders, the images the data benchmarks time (imported by
``index_speed.py`` and ``loader.py``, which run with this folder on ``sys.path``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_images(root: Path, count: int, size: int, classes: int) -> list[Path]:
    """``count`` seeded ``size``-pixel JPEGs, image ``i`` in ``root/class_{i % classes}``."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    paths = []
    for i in range(count):
        folder = root / f"class_{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        f = rng.uniform(1, 6, (2, 3))
        waves = np.sin(2 * np.pi * (f[0] * xx[..., None] + f[1] * yy[..., None]) + i % classes)
        pixels = np.clip(128 + 90 * waves + rng.normal(0, 10, (size, size, 3)), 0, 255)
        path = folder / f"{i:05d}.jpg"
        Image.fromarray(pixels.astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths
