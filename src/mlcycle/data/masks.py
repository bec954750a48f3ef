"""Segmentation data formats: an images folder with a masks folder, and Pascal VOC.

A mask is a PNG of class indices (mode ``L`` or ``P``: for a palette PNG the index is the
class, not the colour), the same size as its image, matched to it by file stem. The value
``ignore_index`` (255, VOC's object border) marks pixels that count for nothing.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from mlcycle.data.images import is_image_file
from mlcycle.data.records import BadSample
from mlcycle.data.sources import SPLITS, inside
from mlcycle.errors import UserError

VOC_CLASSES = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
INDEX_MODES = {"L", "P", "I", "I;16", "I;16B", "I;16L", "I;16N"}


@dataclass(frozen=True)
class MaskSample:
    """An image and its mask; ``split`` is set when the layout fixes it (VOC lists)."""

    image: Path
    mask: Path
    split: str | None = None


def decode_mask(data: bytes, num_classes: int, ignore_index: int) -> np.ndarray:
    """Class indices as an HxW uint8 array; :class:`BadSample` says why a mask is unusable."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            mode = img.mode
            if mode not in INDEX_MODES:
                raise BadSample(
                    f"mask is {mode}; a mask holds class indices (a PNG in mode L or P), not colours"
                )
            mask = np.asarray(img).astype(np.int64)
    except BadSample:
        raise
    except (OSError, ValueError, SyntaxError) as exc:
        raise BadSample(f"mask cannot be read: {' '.join(str(exc).split())}") from exc
    bad = (mask >= num_classes) & (mask != ignore_index)
    if bad.any():
        value = int(mask[bad].max())
        raise BadSample(
            f"mask holds class index {value}, but there are {num_classes} classes "
            f"(0..{num_classes - 1}; {ignore_index} is ignored)"
        )
    if (mask < 0).any():
        raise BadSample("mask holds a negative class index")
    return mask.astype(np.uint8)


def read_classes(
    root: Path, classes: list[str] | None, fallback: tuple[str, ...] = ()
) -> list[str]:
    """Class names: the config's ``classes``, else ``root/classes.txt``, else ``fallback``."""
    if classes:
        return [str(c) for c in classes]
    listed = root / "classes.txt"
    if listed.is_file():
        names = [line.strip() for line in listed.read_text().splitlines() if line.strip()]
        if names:
            return names
    if fallback:
        return list(fallback)
    raise UserError(
        f"data.classes is not set and '{listed}' does not exist; list the class names in index "
        "order (index 0 first, usually background), e.g. --data.classes='[background, cat]'"
    )


def _files(folder: Path, root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and is_image_file(path) and not path.name.startswith("."):
            if not inside(path, root):
                raise UserError(
                    f"'{path}' links outside the data root '{root}'; copy the file in or remove the link"
                )
            found.setdefault(str(path.relative_to(folder).with_suffix("")), path)
    return found


def masks_folder_samples(
    root: str | None, images_dir: str, masks_dir: str
) -> tuple[list[MaskSample], list[tuple[str, str]]]:
    """``root/images/**/<name>.<ext>`` paired with ``root/masks/**/<name>.png``.

    An image without a mask and a mask without an image are skipped (and listed).
    """
    if not root:
        raise UserError(
            "data.root is not set; pass --data.root PATH to a folder with images/ and masks/"
        )
    base = Path(root).expanduser()
    images, masks = base / images_dir, base / masks_dir
    for folder, key in ((images, "images_dir"), (masks, "masks_dir")):
        if not folder.is_dir():
            raise UserError(
                f"'{folder}' does not exist; data.root needs a {folder.name}/ folder (or set data.{key})"
            )
    image_files, mask_files = _files(images, base), _files(masks, base)
    samples, skipped = [], []
    for stem, path in image_files.items():
        if stem in mask_files:
            samples.append(MaskSample(path, mask_files[stem]))
        else:
            skipped.append((str(path), f"no mask named '{stem}' in {masks}"))
    skipped += [
        (str(path), f"mask without an image named '{stem}' in {images}")
        for stem, path in mask_files.items()
        if stem not in image_files
    ]
    return samples, skipped


def voc_samples(root: str | None) -> tuple[list[MaskSample], list[tuple[str, str]]]:
    """Pascal VOC: ``JPEGImages/<id>.jpg``, ``SegmentationClass/<id>.png`` (palette PNG) and
    ``ImageSets/Segmentation/{train,val[,test]}.txt``. Without those lists, every mask is used
    and the split is drawn like any other data set's."""
    if not root:
        raise UserError("data.root is not set; pass --data.root PATH to a VOC folder (VOC2012)")
    base = Path(root).expanduser()
    images, masks = base / "JPEGImages", base / "SegmentationClass"
    for folder in (images, masks):
        if not folder.is_dir():
            raise UserError(
                f"'{folder}' does not exist; a VOC root holds JPEGImages/ and SegmentationClass/"
            )
    lists = base / "ImageSets" / "Segmentation"
    listed: list[tuple[str, str | None]] = []
    if (lists / "train.txt").is_file() and (lists / "val.txt").is_file():
        for split in SPLITS:
            if (lists / f"{split}.txt").is_file():
                names = (lists / f"{split}.txt").read_text().split()
                listed += [(name, split) for name in names]
    else:
        listed = [(p.stem, None) for p in sorted(masks.glob("*.png"))]
    samples, skipped = [], []
    for name, split in listed:
        image = next(
            (
                images / f"{name}{ext}"
                for ext in (".jpg", ".jpeg", ".png")
                if (images / f"{name}{ext}").is_file()
            ),
            None,
        )
        mask = masks / f"{name}.png"
        if image is None:
            skipped.append(
                (str(images / f"{name}.jpg"), "listed in ImageSets but the image does not exist")
            )
        elif not mask.is_file():
            skipped.append((str(mask), "listed in ImageSets but the mask does not exist"))
        else:
            samples.append(MaskSample(image, mask, split))
    return samples, skipped
