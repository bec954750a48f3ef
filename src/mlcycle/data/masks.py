"""Segmentation data formats: an images folder with a masks folder, and Pascal VOC.

A mask is a PNG of class indices (mode ``L`` or ``P``: for a palette PNG the index is the
class, not the colour), the same size as its image, matched to it by file stem. The value
``ignore_index`` (255, VOC's object border) marks pixels that count for nothing.

Splits come from the layout when it has them: split folders (``images/train/`` +
``masks/train/``, or ``train/images/`` + ``train/masks/``; names as in
:mod:`mlcycle.data.layout`) or VOC's ``ImageSets/Segmentation/<split>.txt`` lists. Links inside
the root are followed; the path recorded is the link's own.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from mlcycle.data.images import is_image_file
from mlcycle.data.layout import (
    absolute,
    leaves_root,
    split_folders,
    split_of,
    visible_dirs,
    walk_files,
)
from mlcycle.data.records import BadSample
from mlcycle.data.sources import SPLITS
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


@dataclass
class MaskListing:
    """What a reader found: pairs, skipped files (``(path, reason)``), the splits the layout
    gives (empty: all drawn) and a few words on the layout for the ``layout:`` line."""

    samples: list[MaskSample]
    skipped: list[tuple[str, str]]
    given: set[str]
    text: str


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


PLAIN = "plain image folder (splits drawn)"  # what a non-split folder is, in layout messages


def _files(folder: Path) -> dict[str, Path]:
    """Image files below ``folder`` by their path below it without the extension (links to
    files and folders followed; the link's own path is kept)."""
    found: dict[str, Path] = {}
    for path in walk_files(folder):
        if is_image_file(path):
            found.setdefault(path.relative_to(folder).with_suffix("").as_posix(), path)
    return found


def _pair(
    images: Path, masks: Path, split: str | None
) -> tuple[list[MaskSample], list[tuple[str, str]]]:
    """Pairs of ``images`` and ``masks`` by path below each without the extension."""
    image_files, mask_files = _files(images), _files(masks)
    samples, skipped = [], []
    for stem, path in image_files.items():
        if stem in mask_files:
            samples.append(MaskSample(path, mask_files[stem], split))
        else:
            skipped.append((str(path), f"no mask named '{stem}' in {masks}"))
    skipped += [
        (str(path), f"mask without an image named '{stem}' in {images}")
        for stem, path in mask_files.items()
        if stem not in image_files
    ]
    return samples, skipped


def _loose_files(folder: Path, names: str) -> list[tuple[str, str]]:
    """Image files directly in ``folder`` next to its split folders: listed as skipped."""
    return [
        (str(p), f"not in a split folder ({names}) of {folder}")
        for p in sorted(folder.iterdir())
        if p.is_file() and is_image_file(p) and not p.name.startswith(".")
    ]


def masks_folder_samples(
    root: str | None, images_dir: str, masks_dir: str, layout: str = "auto"
) -> MaskListing:
    """``root/images/**/<name>.<ext>`` paired with ``root/masks/**/<name>.png``.

    Split folders give the splits: ``root/images/<split>/`` with ``root/masks/<split>/``, or
    ``root/<split>/images/`` with ``root/<split>/masks/`` (any combination with train; names
    as in :func:`mlcycle.data.layout.split_folders`). Pairs are matched within a split. An image
    without a mask and a mask without an image are skipped (and listed).
    """
    if not root:
        raise UserError(
            "data.root is not set; pass --data.root PATH to a folder with images/ and masks/"
        )
    base = Path(root).expanduser()
    if not base.is_dir():
        raise UserError(f"data root '{base}' does not exist or is not a folder")
    images, masks = base / images_dir, base / masks_dir
    if not images.is_dir() and layout != "classes":
        # root/<split>/images + root/<split>/masks
        folders = split_folders(base, layout, what=PLAIN)
        if folders:
            return _split_first(base, folders, images_dir, masks_dir)
    for folder, key in ((images, "images_dir"), (masks, "masks_dir")):
        if not folder.is_dir():
            raise UserError(
                f"'{folder}' does not exist; data.root needs a {folder.name}/ folder (or set "
                f"data.{key}), or split folders ({'/'.join(SPLITS)}) that each hold "
                f"{images_dir}/ and {masks_dir}/"
            )
    beside = [p.name + "/" for p in visible_dirs(base) if split_of(p.name)]
    if beside and layout != "classes":
        raise UserError(
            f"'{base}' holds both {images_dir}/ + {masks_dir}/ and split folders "
            f"({', '.join(beside)}); keep one layout, or set --data.layout=classes to read "
            f"{images_dir}/ and {masks_dir}/ only (splits drawn)"
        )
    image_splits = split_folders(images, layout, what=PLAIN)
    if not image_splits:
        samples, skipped = _pair(images, masks, None)
        return MaskListing(samples, skipped, set(), f"masks folders {images_dir}/ {masks_dir}/")
    mask_splits = split_folders(masks, "splits" if layout == "splits" else "auto", what=PLAIN)
    if set(mask_splits) != set(image_splits):
        have = ", ".join(f"{images_dir}/{p.name}/" for p in image_splits.values())
        other = ", ".join(f"{masks_dir}/{p.name}/" for p in mask_splits.values()) or "none"
        raise UserError(
            f"'{images}' has split folders ({have}) but '{masks}' has {other}; give the masks "
            "the same split folders"
        )
    samples, skipped = [], []
    names = " ".join(f"{image_splits[s].name}/" for s in SPLITS if s in image_splits)
    for split in SPLITS:
        if split in image_splits:
            found, lost = _pair(image_splits[split], mask_splits[split], split)
            samples += found
            skipped += lost
    skipped += _loose_files(images, names) + _loose_files(masks, names)
    text = f"masks folders {images_dir}/<split>/ {masks_dir}/<split>/, split folders {names}"
    return MaskListing(samples, skipped, set(image_splits), text)


def _split_first(
    base: Path, folders: dict[str, Path], images_dir: str, masks_dir: str
) -> MaskListing:
    """``root/<split>/images`` + ``root/<split>/masks``."""
    samples, skipped = [], []
    for split in SPLITS:
        if split not in folders:
            continue
        images, masks = folders[split] / images_dir, folders[split] / masks_dir
        for folder in (images, masks):
            if not folder.is_dir():
                raise UserError(
                    f"'{folder}' does not exist; each split folder of '{base}' needs "
                    f"{images_dir}/ and {masks_dir}/"
                )
        found, lost = _pair(images, masks, split)
        samples += found
        skipped += lost
    given = " ".join(f"{folders[s].name}/" for s in SPLITS if s in folders)
    text = f"masks folders <split>/{images_dir}/ <split>/{masks_dir}/, split folders {given}"
    return MaskListing(samples, skipped, set(folders), text)


def _voc_lists(lists: Path, layout: str) -> tuple[dict[str, list[str]], str]:
    """Image ids by split from ``ImageSets/Segmentation/<split>.txt`` and the words for the
    ``layout:`` line. ``trainval.txt`` (VOC's train + val) fills a missing train or val: the
    part of it the other list does not hold; alone, it is train and val is drawn from it."""
    files: dict[str, Path] = {}
    trainval: Path | None = None
    if lists.is_dir() and layout != "classes":
        for path in sorted(lists.glob("*.txt")):
            stem = path.stem.lower()
            if stem == "trainval":
                trainval = path
                continue
            split = split_of(stem)
            if split is None:
                continue  # VOC also ships per-class lists elsewhere; ignore other names
            if split in files:
                raise UserError(
                    f"'{lists}' has two {split} lists, {files[split].name} and {path.name}; keep one"
                )
            files[split] = path
    read = {s: p.read_text().split() for s, p in files.items()}
    if trainval is not None:
        union = trainval.read_text().split()
        if "train" in read and "val" not in read:
            taken = set(read["train"])
            read["val"] = [n for n in union if n not in taken]
        elif "val" in read and "train" not in read:
            taken = set(read["val"])
            read["train"] = [n for n in union if n not in taken]
        elif "train" not in read:
            read["train"] = union
        read = {s: names for s, names in read.items() if names}
    if read and "train" not in read:
        raise UserError(
            f"'{lists}' has {', '.join(p.name for p in files.values())} but no train.txt (or "
            "trainval.txt); add it, or set --data.layout=classes to use every mask with drawn splits"
        )
    if layout == "splits" and not read:
        raise UserError(f"data.layout=splits but '{lists}' has no train.txt or trainval.txt")
    seen: dict[str, str] = {}
    for split in SPLITS:
        for name in read.get(split, []):
            if seen.setdefault(name, split) != split:
                raise UserError(
                    f"'{name}' is listed in both the {seen[name]} and the {split} list of "
                    f"'{lists}'; a file belongs to one split"
                )
    words = []
    for split in SPLITS:
        if split in files:
            words.append(files[split].name)
        elif split in read and trainval is not None:
            other = "val" if split == "train" else "train"
            less = f" less {files[other].name}" if other in files else ""
            words.append(f"{trainval.name}{less} as {split}")
    return read, "VOC ImageSets/Segmentation " + " ".join(words)


def voc_samples(root: str | None, layout: str = "auto") -> MaskListing:
    """Pascal VOC: ``JPEGImages/<id>.jpg``, ``SegmentationClass/<id>.png`` (palette PNG) and
    ``ImageSets/Segmentation/<split>.txt`` lists (any combination with train, or trainval).
    Without those lists (or with ``layout=classes``), every mask is used and the split is drawn
    like any other data set's."""
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
    read, text = _voc_lists(lists, layout)
    listed: list[tuple[str, str | None]] = [
        (name, split) for split in SPLITS for name in read.get(split, [])
    ]
    if not read:
        listed = [(p.stem, None) for p in sorted(masks.glob("*.png"))]
        why = "not used: data.layout=classes" if layout == "classes" else "none found"
        text = f"VOC SegmentationClass/ (ImageSets/Segmentation lists {why})"
    samples, skipped = [], []
    for name, split in listed:
        if leaves_root(absolute(images / name), base):
            skipped.append(
                (str(images / name), f"path leaves the data root (listed in ImageSets as '{name}')")
            )
            continue
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
    return MaskListing(samples, skipped, set(read), text)
