"""The masks-folder segmentation source: ``root/images/**/<name>.<ext>`` paired with
``root/masks/**/<name>.png`` by path below each without the extension.

Split folders give the splits: ``images/<split>/`` with ``masks/<split>/``, or
``<split>/images/`` with ``<split>/masks/`` (any combination with train; names as in
:mod:`mlcycle.data.layout`). Pairs are matched within a split; an image without a mask and a
mask without an image are skipped (and listed). Links inside the root are followed; the path
recorded is the link's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlcycle.core.errors import UserError
from mlcycle.data.images import is_image_file
from mlcycle.data.index import Listing
from mlcycle.data.layout import (
    PLAIN,
    folder_names,
    loose_files,
    root_folder,
    split_folders,
    split_of,
    visible_dirs,
    walk_files,
)
from mlcycle.data.segmentation import MaskSample, register_segmentation_source
from mlcycle.data.splits import SPLITS


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


def _files(folder: Path) -> dict[str, Path]:
    """Image files below ``folder`` by their path below it without the extension (links to
    files and folders followed; the link's own path is kept)."""
    found: dict[str, Path] = {}
    for path in walk_files(folder):
        if is_image_file(path):
            found.setdefault(path.relative_to(folder).with_suffix("").as_posix(), path)
    return found


def _pair(images: Path, masks: Path, split: str | None, listing: Listing) -> None:
    """Add the pairs of ``images`` and ``masks`` to ``listing``; list the unpaired files."""
    image_files, mask_files = _files(images), _files(masks)
    for stem, path in image_files.items():
        if stem in mask_files:
            listing.samples.append(MaskSample(path, mask_files[stem], split))
        else:
            listing.skipped.append((str(path), f"no mask named '{stem}' in {masks}"))
    listing.skipped += [
        (str(path), f"mask without an image named '{stem}' in {images}")
        for stem, path in mask_files.items()
        if stem not in image_files
    ]


@register_segmentation_source("masks")
def masks_folder(
    root: str | None = None,
    images_dir: str = "images",
    masks_dir: str = "masks",
    classes: list[str] | None = None,
    layout: str = "auto",
    **_: Any,
) -> Listing:
    """The pairs of ``root/<images_dir>`` and ``root/<masks_dir>``, or of split folders."""
    base = root_folder(root, "a folder with images/ and masks/")
    listing = read_pairs(base, images_dir, masks_dir, layout)
    listing.class_names = read_classes(base, classes)
    return listing


def read_pairs(base: Path, images_dir: str, masks_dir: str, layout: str) -> Listing:
    """The pairs below ``base``, with the splits its folders give."""
    listing = Listing([], str(base))
    images, masks = base / images_dir, base / masks_dir
    if not images.is_dir() and layout != "classes":
        folders = split_folders(base, layout, what=PLAIN)
        if folders:  # root/<split>/images + root/<split>/masks
            return _split_first(base, folders, images_dir, masks_dir, listing)
    _check_folders(base, images, masks, images_dir, masks_dir, layout)
    image_splits = split_folders(images, layout, what=PLAIN)
    if not image_splits:
        _pair(images, masks, None, listing)
        listing.text = f"masks folders {images_dir}/ {masks_dir}/"
        return listing
    mask_splits = split_folders(masks, "splits" if layout == "splits" else "auto", what=PLAIN)
    if set(mask_splits) != set(image_splits):
        have = ", ".join(f"{images_dir}/{p.name}/" for p in image_splits.values())
        other = ", ".join(f"{masks_dir}/{p.name}/" for p in mask_splits.values()) or "none"
        raise UserError(
            f"'{images}' has split folders ({have}) but '{masks}' has {other}; give the masks "
            "the same split folders"
        )
    for split in SPLITS:
        if split in image_splits:
            _pair(image_splits[split], mask_splits[split], split, listing)
    names = folder_names(image_splits)
    listing.skipped += loose_files(images, names) + loose_files(masks, names)
    listing.given = set(image_splits)
    listing.text = (
        f"masks folders {images_dir}/<split>/ {masks_dir}/<split>/, split folders {names}"
    )
    return listing


def _check_folders(
    base: Path, images: Path, masks: Path, images_dir: str, masks_dir: str, layout: str
) -> None:
    """Both folders exist, and no split folders stand beside them."""
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


def _split_first(
    base: Path, folders: dict[str, Path], images_dir: str, masks_dir: str, listing: Listing
) -> Listing:
    """``root/<split>/images`` + ``root/<split>/masks``."""
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
        _pair(images, masks, split, listing)
    listing.given = set(folders)
    listing.text = (
        f"masks folders <split>/{images_dir}/ <split>/{masks_dir}/, "
        f"split folders {folder_names(folders)}"
    )
    return listing
