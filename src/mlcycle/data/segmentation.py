"""The segmentation DataModule: image/mask pairs, verification, splits, mask-aware augmentation."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import albumentations as A
import numpy as np
import torch
from torch.utils.data import Dataset

from mlcycle.data.base import ImageDataModule
from mlcycle.data.images import UnreadableImage, decode_image, guess_channels, read_bytes
from mlcycle.data.layout import announce, data_root
from mlcycle.data.masks import (
    VOC_CLASSES,
    MaskListing,
    MaskSample,
    decode_mask,
    masks_folder_samples,
    read_classes,
    voc_samples,
)
from mlcycle.data.records import (
    BadSample,
    check_strict,
    no_usable_data,
    parallel_map,
    splits_from_file,
    use_cache,
    write_run_files,
)
from mlcycle.data.sources import SPLITS
from mlcycle.data.splits import assign_splits, check_coverage, describe_draw
from mlcycle.data.transforms import finish, resize
from mlcycle.errors import UserError

SHAPES_ROOT = "data/shapes_seg"


@dataclass
class MaskIndex:
    """Everything known about the image/mask pairs after reading and checking them."""

    samples: list[MaskSample]
    splits: list[str]
    class_names: list[str]
    channels: int
    skipped: list[tuple[str, str]]
    cache: list[tuple[np.ndarray, np.ndarray]] | None
    root: Path
    digests: list[tuple[str, int, str, int]]  # image sha256, bytes, mask sha256, bytes
    positions: dict[str, list[int]] = field(default_factory=dict)
    layout: str = ""  # the words of the ``layout:`` line


def given_splits(
    given: list[str | None],
    expected: set[str],
    hashes: list[str],
    hp: Any,
    where: str,
) -> list[str]:
    """Splits the layout fixed (``given`` per kept sample; ``expected``: the splits the layout
    named) kept, missing ones drawn from train; without any, every split drawn."""
    lost = [s for s in SPLITS if s in expected and s not in given]
    if lost:
        raise UserError(
            f"the layout of '{where}' gives a {lost[0]} split, but none of its files is usable "
            "(see skipped_files.csv)"
        )
    return assign_splits(
        given, hashes, ["images"] * len(hashes), hp.val_fraction, hp.test_fraction, hp.split_seed
    )


def announce_layout(text: str, given: set[str], hp: Any) -> str:
    """Print and return the ``layout:`` line's words."""
    words = describe_draw(given, hp.val_fraction, hp.test_fraction, hp.split_file)
    line = f"{text}; {words}" if words else text
    announce(line)
    return line


def warn_coverage(
    present: list[Iterable[int]], given: list[str | None], names: list[str], what: str
) -> None:
    """Class coverage of given splits (see :func:`check_coverage`), warnings on stderr."""
    named = [[names[c] for c in classes] for classes in present]
    for warning in check_coverage(named, given, what):
        print(f"warning: {warning}", file=sys.stderr)


def read_pair(
    sample: MaskSample, channels: int, num_classes: int, ignore_index: int
) -> tuple[np.ndarray, np.ndarray, tuple[str, int, str, int]]:
    """Decode and check one pair; raises :class:`BadSample` with the reason."""
    try:
        image_bytes = read_bytes(sample.image)
        image = decode_image(image_bytes, channels)
    except UnreadableImage as exc:
        raise BadSample(f"image cannot be read: {exc}") from exc
    try:
        mask_bytes = read_bytes(sample.mask)
    except UnreadableImage as exc:
        raise BadSample(f"mask cannot be read: {exc}") from exc
    mask = decode_mask(mask_bytes, num_classes, ignore_index)
    if mask.shape != image.shape[:2]:
        raise BadSample(
            f"mask '{sample.mask.name}' is {mask.shape[1]}x{mask.shape[0]} (WxH) but its image is "
            f"{image.shape[1]}x{image.shape[0]}"
        )
    digests = (
        hashlib.sha256(image_bytes).hexdigest(),
        len(image_bytes),
        hashlib.sha256(mask_bytes).hexdigest(),
        len(mask_bytes),
    )
    return image, mask, digests


def load_pair(
    index: MaskIndex, position: int, size: tuple[int, int], ignore_index: int
) -> tuple[np.ndarray, np.ndarray]:
    """The resized uint8 image (HxWxC) and mask (HxW) of sample ``position``."""
    if index.cache is not None:
        return index.cache[position]
    sample = index.samples[position]
    image, mask, _ = read_pair(sample, index.channels, len(index.class_names), ignore_index)
    both = resize(*size)(image=image, mask=mask)
    return both["image"], both["mask"]


class MaskDataset(Dataset):
    """Items are ``(image CxHxW float, mask HxW int64, sample index)``. Holds the index, not
    the data module, so worker processes get only what they need."""

    def __init__(
        self,
        index: MaskIndex,
        positions: list[int],
        pipeline: A.Compose,
        size: tuple[int, int],
        ignore_index: int,
    ):
        self.index, self.positions, self.pipeline = index, positions, pipeline
        self.size, self.ignore_index = size, ignore_index

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        pos = self.positions[i]
        image, mask = load_pair(self.index, pos, self.size, self.ignore_index)
        out = self.pipeline(image=image, mask=mask)
        return out["image"], torch.as_tensor(out["mask"]).long(), pos


class SegmentationData(ImageDataModule):
    """Images with per-pixel class masks.

    Args:
        source: ``shapes`` (built-in shapes on textured backgrounds, written under ``root``
            once), ``masks`` (``root/images`` + ``root/masks``, matched by file stem; split
            folders ``images/<split>/`` + ``masks/<split>/`` or ``<split>/images/`` +
            ``<split>/masks/`` give the splits) or ``voc`` (a Pascal VOC root: JPEGImages,
            SegmentationClass, ImageSets/Segmentation lists).
        root: the data folder (for ``shapes``: where it is written, ``data/shapes_seg``).
        images_dir: the images folder below ``root`` (``masks``).
        masks_dir: the masks folder below ``root`` (``masks``).
        classes: class names in index order; default ``root/classes.txt`` (VOC: its 21 names).
        ignore_index: mask value that is ignored by the loss and the metrics (VOC: 255).
        image_size: images are resized to this (bilinear; masks nearest-neighbour).
        channels: 1 or 3; ``None`` takes 1 when every sampled image is grayscale, else 3.
        mean: per-channel normalization mean in 0..1; ``None`` measures it on the train split.
        std: per-channel normalization std in 0..1; ``None`` measures it on the train split.
        val_fraction: share of the images held for validation (unless the layout fixes it;
            a layout without a val split draws this share from train).
        test_fraction: share held out as the test split (drawn from train when the layout
            gives splits but no test split; 0: no test split).
        split_seed: seed of the split.
        split_file: a run's ``splits.csv``; reuses that run's split exactly.
        train_transforms: albumentations transforms for training pairs; geometric ones move the
            mask with the image (nearest-neighbour), pixel ones touch the image only.
        batch_size: images per batch.
        num_workers: DataLoader worker processes.
        cache_images: keep decoded, resized pairs in memory; ``None``: when they fit in 1 GiB.
        allow_changed: resume a run even though its data changed since it started.
        shapes_options: arguments of the built-in generator (``count``, ``size``, ``seed``, ...).
        layout: ``auto`` takes the splits from split folders (``train``; ``val``, ``valid``,
            ``validation``, ``dev``; ``test``, ``testing``; any case) or VOC's lists when there
            are any; ``splits`` insists on them; ``classes`` ignores them (all splits drawn).
        strict: stop with exit 2 when any file is skipped, instead of listing it in
            skipped_files.csv.
    """

    def __init__(
        self,
        source: Literal["shapes", "masks", "voc"] = "shapes",
        root: str | None = None,
        images_dir: str = "images",
        masks_dir: str = "masks",
        classes: list[str] | None = None,
        ignore_index: int = 255,
        image_size: int | list[int] = 64,
        channels: int | None = None,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        split_seed: int = 42,
        split_file: str | None = None,
        train_transforms: list[dict[str, Any]] | None = None,
        batch_size: int = 16,
        num_workers: int = 0,
        cache_images: bool | None = None,
        allow_changed: bool = False,
        shapes_options: dict[str, Any] | None = None,
        layout: str = "auto",
        strict: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if source not in ("shapes", "masks", "voc"):
            raise UserError(f"data.source '{source}' is not one of: shapes, masks, voc")
        if layout not in ("auto", "splits", "classes"):
            raise UserError(f"data.layout='{layout}' is not one of auto, splits, classes")
        if not 0 <= ignore_index <= 255:
            raise UserError(f"data.ignore_index={ignore_index} must be in 0..255")
        self.check_arguments()  # channels, batch size, image size, augmentations

    # --- what the model and the run record need -----------------------------------------------

    @property
    def ignore_index(self) -> int:
        return self.hparams.ignore_index

    # --- reading ------------------------------------------------------------------------------

    def _where(self) -> Path:
        hp = self.hparams
        return Path(hp.root or (SHAPES_ROOT if hp.source == "shapes" else ".")).expanduser()

    def _list(self) -> tuple[MaskListing, list[str]]:
        hp = self.hparams
        root = self._where()
        if hp.source == "voc":
            listing = voc_samples(hp.root, hp.layout)
            return listing, read_classes(root, hp.classes, VOC_CLASSES)
        if hp.source == "shapes":
            from mlcycle.data.shapes import write_shape_masks

            write_shape_masks(root, **(hp.shapes_options or {}))
        listing = masks_folder_samples(str(root), hp.images_dir, hp.masks_dir, hp.layout)
        return listing, read_classes(root, hp.classes)

    def _build_index(self) -> MaskIndex:
        hp = self.hparams
        listing, class_names = self._list()
        samples, skipped = listing.samples, listing.skipped
        text = announce_layout(listing.text, listing.given, hp)
        if len(class_names) < 2:
            raise UserError(
                f"segmentation needs at least two classes (usually background and one more); got {class_names}"
            )
        channels = hp.channels or guess_channels([s.image for s in samples])

        def check(sample: MaskSample) -> Any:
            try:
                image, mask, digests = read_pair(
                    sample, channels, len(class_names), hp.ignore_index
                )
            except BadSample as exc:
                return str(exc)
            present = set(np.flatnonzero(np.bincount(mask.ravel(), minlength=256)).tolist())
            both = resize(*self.image_size)(image=image, mask=mask)
            return both["image"], both["mask"], digests, present - {hp.ignore_index}

        results = parallel_map(check, samples, "checking images and masks")
        skipped += [
            (str(s.image), r) for s, r in zip(samples, results, strict=True) if isinstance(r, str)
        ]
        check_strict(skipped, hp.strict, str(self._where()))
        keep = [i for i, r in enumerate(results) if not isinstance(r, str)]
        if not keep:
            raise no_usable_data(str(self._where()), skipped, "image/mask pairs")
        samples = [samples[i] for i in keep]
        digests = [results[i][2] for i in keep]
        h, w = self.image_size
        cache = (
            [(results[i][0], results[i][1]) for i in keep]
            if use_cache(hp.cache_images, len(keep), h * w * (channels + 1))
            else None
        )
        splits = self._splits(samples, digests, listing.given)
        if not hp.split_file:
            warn_coverage(
                [results[i][3] for i in keep], [s.split for s in samples], class_names, "pixel"
            )
        root = data_root([s.image for s in samples])
        index = MaskIndex(
            samples, splits, class_names, channels, skipped, cache, root, digests, layout=text
        )
        index.positions = {name: [i for i, s in enumerate(splits) if s == name] for name in SPLITS}
        return index

    def _splits(
        self,
        samples: list[MaskSample],
        digests: list[tuple[str, int, str, int]],
        given: set[str],
    ) -> list[str]:
        hp = self.hparams
        if hp.split_file:
            return splits_from_file(hp.split_file, [s.image for s in samples])
        hashes = [d[0] for d in digests]
        return given_splits([s.split for s in samples], given, hashes, hp, str(self._where()))

    def raw_pair(self, position: int) -> tuple[np.ndarray, np.ndarray]:
        """The resized uint8 image (HxWxC) and mask (HxW) of sample ``position``."""
        return load_pair(self.index, position, self.image_size, self.hparams.ignore_index)

    def raw_image(self, position: int) -> np.ndarray:
        return self.raw_pair(position)[0]

    # --- datasets and loaders -----------------------------------------------------------------

    def dataset(self, split: str, augment: bool = False) -> MaskDataset:
        if split not in SPLITS:
            raise UserError(f"unknown split '{split}'; use one of {', '.join(SPLITS)}")
        mean, std = self.normalization
        seed = torch.initial_seed() % 2**32 if augment else None
        pipeline = finish(self.augment if augment else [], mean, std, seed=seed)
        return MaskDataset(
            self.index, self.index.positions[split], pipeline, self.image_size, self.ignore_index
        )

    # --- the run record -----------------------------------------------------------------------

    def manifest_rows(self) -> list[tuple[str, str, int, str, str, str]]:
        index, source = self.index, self.hparams.source
        rows = []
        for sample, (ih, ib, mh, mb), split in zip(
            index.samples, index.digests, index.splits, strict=True
        ):
            rows.append((str(sample.image), ih, ib, "image", split, source))
            rows.append((str(sample.mask), mh, mb, f"mask of {sample.image.name}", split, source))
        return rows

    def describe(self) -> dict[str, Any]:
        mean, std = self.normalization
        return {
            "task": "segmentation",
            "class_names": self.class_names,
            "num_classes": self.num_classes,
            "channels": self.in_channels,
            "image_size": list(self.image_size),
            "resize": "stretch to image_size (albumentations Resize: image bilinear, mask nearest)",
            "mean": mean,
            "std": std,
            "input_range": "uint8 0..255 scaled to 0..1, then (x - mean) / std",
            "ignore_index": self.hparams.ignore_index,
            "mask_format": "PNG of class indices (mode L or P), same size as the image",
            "layout": self.index.layout,
            "split_counts": {s: len(p) for s, p in self.index.positions.items()},
            "skipped_files": len(self.index.skipped),
            "fingerprint": self.fingerprint,
        }

    def write_records(self, run_dir: Path) -> None:
        """``splits.csv`` (``path,mask,split``), ``data_manifest.csv``, ``skipped_files.csv``,
        ``data.json``."""
        index = self.index
        rows = [
            (str(s.image), str(s.mask), split)
            for s, split in zip(index.samples, index.splits, strict=True)
        ]
        write_run_files(
            run_dir,
            self.manifest_rows(),
            ("path", "mask", "split"),
            rows,
            index.skipped,
            self.describe(),
        )
