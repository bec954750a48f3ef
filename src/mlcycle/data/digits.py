"""The built-in data set: scikit-learn's 1,797 bundled 8x8 handwritten digits as PNG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from mlcycle.data.generated import write_once


def write_digits(root: Path) -> Path:
    """Write ``root/<digit>/<index>.png`` once; later calls find the marker and return."""

    def write(tmp: Path) -> None:
        from sklearn.datasets import load_digits

        digits = load_digits()
        for index, (image, target) in enumerate(zip(digits.images, digits.target, strict=True)):
            pixels = np.rint(image * (255.0 / 16.0)).astype(np.uint8)
            folder = tmp / str(int(target))
            folder.mkdir(exist_ok=True)
            Image.fromarray(pixels, mode="L").save(folder / f"{index:04d}.png")

    return write_once(Path(root), write, "scikit-learn load_digits, 8x8 grayscale, 0..255")
