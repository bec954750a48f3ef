"""Generated image sets with planted faults, and a kind of data mlcycle does not know, for the
data-quality tests."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
from lightning.pytorch import LightningDataModule
from PIL import Image

from mlcycle.quality.kinds import DataQuality


def texture(seed: int, size: int = 32, level: float = 128.0) -> np.ndarray:
    """A smooth random RGB texture; different seeds give clearly different pictures."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    channels = []
    for _ in range(3):
        wave = sum(
            rng.uniform(0.5, 1.0)
            * np.sin(2 * np.pi * (rng.uniform(0.5, 3) * xx + rng.uniform(0.5, 3) * yy) + rng.uniform(0, 6))
            for _ in range(3)
        )  # fmt: skip
        channels.append(level + 45 * wave + rng.normal(0, 4, (size, size)))
    return np.clip(np.stack(channels, -1), 0, 255).astype(np.uint8)


def save(array: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def near_copy(path: Path, out: Path, shift: int = 10, seed: int = 0) -> Path:
    """The same picture a little brighter, with a little noise: a near duplicate."""
    arr = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
    noise = np.random.default_rng(seed).integers(-2, 3, arr.shape)
    return save(np.clip(arr + shift + noise, 0, 255).astype(np.uint8), out)


CLASSES = ("a", "b", "c")


def split_layout(root: Path, per_class: int = 8) -> Path:
    """``root/{train,val,test}/<class>/`` with distinct textures (per_class train, 2 val, 2 test)."""
    seed = 0
    for split, n in (("train", per_class), ("val", 2), ("test", 2)):
        for c in CLASSES:
            for i in range(n):
                seed += 1
                save(texture(seed), root / split / c / f"{c}_{i:03d}.png")
    return root


def plant_faults(root: Path) -> dict[str, Path]:
    """Plant one of each fault into a :func:`split_layout` tree; returns the planted files."""
    train = root / "train"
    good = (train / "b" / "b_000.png").read_bytes()
    planted = {
        "corrupt": train / "a" / "corrupt.png",
        "truncated": train / "b" / "truncated.png",
        "zero_byte": train / "c" / "empty.png",
        "duplicate": train / "a" / "dup.png",
        "near": train / "b" / "near.png",
        "leak_exact": root / "test" / "a" / "leak.png",
        "leak_near": root / "val" / "c" / "leak_near.png",
        "mislabeled": train / "b" / "mislabeled.png",
        "tiny": train / "c" / "tiny.png",
        "dark": train / "a" / "dark.png",
        "lab": train / "b" / "lab.tif",
    }
    planted["corrupt"].write_text("this is not an image")
    planted["truncated"].write_bytes(good[: len(good) // 2])
    planted["zero_byte"].write_bytes(b"")
    shutil.copyfile(train / "a" / "a_000.png", planted["duplicate"])
    near_copy(train / "b" / "b_001.png", planted["near"])
    shutil.copyfile(train / "a" / "a_002.png", planted["leak_exact"])
    near_copy(train / "c" / "c_003.png", planted["leak_near"], shift=-8, seed=1)
    shutil.copyfile(train / "a" / "a_004.png", planted["mislabeled"])
    save(texture(999, size=4), planted["tiny"])
    save(texture(998, level=6.0) // 8, planted["dark"])
    Image.new("LAB", (32, 32), (50, 0, 0)).save(planted["lab"])
    for i in range(3):  # a class with too few images
        planted[f"small_{i}"] = save(texture(900 + i), train / "d" / f"d_{i}.png")
    return planted


def jpeg_with_gps(path: Path, seed: int = 5) -> Path:
    """A JPEG carrying EXIF with a GPS position, a camera model and an orientation."""
    img = Image.fromarray(texture(seed))
    exif = Image.Exif()
    exif[0x0110] = "SecretCam 3000"  # Model
    exif[0x0112] = 1  # Orientation
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (52.0, 31.0, 12.5)
    gps[3], gps[4] = "E", (13.0, 24.0, 36.0)
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif, quality=92)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
    return path


class KindData(LightningDataModule):
    """A plugin's data module of its own kind, whose quality part a test registers."""

    data_kind = "test_kind"

    def __init__(self, root: str = "") -> None:
        super().__init__()
        self.root = root


class NoKindData(LightningDataModule):
    """A data module that declares no kind and that no part reads."""

    def __init__(self, root: str = "") -> None:
        super().__init__()


class KindQuality(DataQuality):
    """The quality part of ``KindData``: says what it was given."""

    task = "test kind"

    def validate(self, args, dm, configs, overrides) -> dict:
        return {"kind": self.task, "root": dm.root, "overrides": overrides, "out": args.out}
