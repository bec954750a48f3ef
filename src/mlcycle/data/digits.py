"""The built-in data set: scikit-learn's 1,797 bundled 8x8 handwritten digits as PNG files."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

MARKER = ".complete"


def write_digits(root: Path) -> Path:
    """Write ``root/<digit>/<index>.png`` once; later calls find the marker and return."""
    root = Path(root)
    if (root / MARKER).exists():
        return root
    if root.exists() and any(root.iterdir()):
        # Never overwrite a folder we did not write.
        return root
    from sklearn.datasets import load_digits

    digits = load_digits()
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".digits-", dir=root.parent))
    try:
        for index, (image, target) in enumerate(zip(digits.images, digits.target, strict=True)):
            pixels = np.rint(image * (255.0 / 16.0)).astype(np.uint8)
            folder = tmp / str(int(target))
            folder.mkdir(exist_ok=True)
            Image.fromarray(pixels, mode="L").save(folder / f"{index:04d}.png")
        (tmp / MARKER).write_text("scikit-learn load_digits, 8x8 grayscale, 0..255\n")
        if root.exists():
            root.rmdir()
        os.replace(tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root
