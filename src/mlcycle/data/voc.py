"""The Pascal VOC segmentation source: ``JPEGImages/<id>.jpg``, ``SegmentationClass/<id>.png``
(palette PNG) and ``ImageSets/Segmentation/<split>.txt`` lists (any combination with train, or
trainval). Without those lists (or with ``layout=classes``), every mask is used and the split
is drawn like any other data set's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlcycle.core.errors import UserError
from mlcycle.data.index import Listing
from mlcycle.data.layout import absolute, leaves_root, root_folder, split_of
from mlcycle.data.masks import read_classes
from mlcycle.data.segmentation import MaskSample, register_segmentation_source
from mlcycle.data.splits import SPLITS

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


def _list_files(lists: Path, layout: str) -> tuple[dict[str, Path], Path | None]:
    """``{split: <split>.txt}`` of ``lists`` and its ``trainval.txt``, if any."""
    files: dict[str, Path] = {}
    trainval: Path | None = None
    if not lists.is_dir() or layout == "classes":
        return files, trainval
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
    return files, trainval


def _fill_from_trainval(read: dict[str, list[str]], trainval: Path) -> dict[str, list[str]]:
    """``trainval.txt`` (VOC's train + val) fills a missing train or val: the part of it the
    other list does not hold; alone, it is train and val is drawn from it."""
    union = trainval.read_text().split()
    if "train" in read and "val" not in read:
        taken = set(read["train"])
        read["val"] = [n for n in union if n not in taken]
    elif "val" in read and "train" not in read:
        taken = set(read["val"])
        read["train"] = [n for n in union if n not in taken]
    elif "train" not in read:
        read["train"] = union
    return {s: names for s, names in read.items() if names}


def _voc_lists(lists: Path, layout: str) -> tuple[dict[str, list[str]], str]:
    """Image ids by split from ``ImageSets/Segmentation/<split>.txt`` and the words for the
    ``layout:`` line."""
    files, trainval = _list_files(lists, layout)
    read = {s: p.read_text().split() for s, p in files.items()}
    if trainval is not None:
        read = _fill_from_trainval(read, trainval)
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


def _add(listing: Listing, base: Path, name: str, split: str | None) -> None:
    """The pair of image id ``name``, or the reason it is skipped."""
    images, masks = base / "JPEGImages", base / "SegmentationClass"
    if leaves_root(absolute(images / name), base):
        reason = f"path leaves the data root (listed in ImageSets as '{name}')"
        listing.skipped.append((str(images / name), reason))
        return
    candidates = [images / f"{name}{ext}" for ext in (".jpg", ".jpeg", ".png")]
    image = next((p for p in candidates if p.is_file()), None)
    mask = masks / f"{name}.png"
    if image is None:
        reason = "listed in ImageSets but the image does not exist"
        listing.skipped.append((str(images / f"{name}.jpg"), reason))
    elif not mask.is_file():
        listing.skipped.append((str(mask), "listed in ImageSets but the mask does not exist"))
    else:
        listing.samples.append(MaskSample(image, mask, split))


@register_segmentation_source("voc")
def voc(
    root: str | None = None, classes: list[str] | None = None, layout: str = "auto", **_: Any
) -> Listing:
    """A Pascal VOC root (VOC2012); class names default to VOC's 21."""
    base = root_folder(root, "a VOC folder (VOC2012)")
    for folder in (base / "JPEGImages", base / "SegmentationClass"):
        if not folder.is_dir():
            raise UserError(
                f"'{folder}' does not exist; a VOC root holds JPEGImages/ and SegmentationClass/"
            )
    read, text = _voc_lists(base / "ImageSets" / "Segmentation", layout)
    listed = [(name, split) for split in SPLITS for name in read.get(split, [])]
    if not read:
        masks = sorted((base / "SegmentationClass").glob("*.png"))
        listed = [(p.stem, None) for p in masks]
        why = "not used: data.layout=classes" if layout == "classes" else "none found"
        text = f"VOC SegmentationClass/ (ImageSets/Segmentation lists {why})"
    listing = Listing([], str(base), given=set(read), text=text)
    for name, split in listed:
        _add(listing, base, name, split)
    listing.class_names = read_classes(base, classes, VOC_CLASSES)
    return listing
