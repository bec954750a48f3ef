"""The image classification DataModule: sources, verification, splits, caching, augmentation."""

from __future__ import annotations

import csv
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import albumentations as A
import numpy as np
import torch
from torch.utils.data import Dataset

from mlcycle.data.base import ImageDataModule
from mlcycle.data.images import UnreadableImage, guess_channels, load_image, read_image
from mlcycle.data.layout import announce, data_root
from mlcycle.data.records import (
    check_strict,
    no_usable_data,
    parallel_map,
    splits_from_file,
    use_cache,
    write_run_files,
)
from mlcycle.data.sources import SPLITS, Found, Sample, load_samples
from mlcycle.data.splits import assign_splits, check_coverage, describe_draw
from mlcycle.data.transforms import finish, resize
from mlcycle.errors import UserError


@dataclass
class Index:
    """Everything known about the data after scanning and verifying it."""

    samples: list[Sample]
    targets: list[int]
    splits: list[str]
    class_names: list[str]
    channels: int
    skipped: list[tuple[str, str]]
    cache: list[np.ndarray] | None
    root: Path
    hashes: list[str] = field(default_factory=list)  # sha256 of each file's bytes
    sizes: list[int] = field(default_factory=list)
    positions: dict[str, list[int]] = field(default_factory=dict)


def quarantined(path: Path) -> set[str]:
    """Resolved paths listed in a ``quarantine.csv`` (columns ``path,reason``)."""
    if not path.is_file():
        raise UserError(
            f"quarantine list '{path}' does not exist; run scripts/validate_data.py or unset data.quarantine"
        )
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if "path" not in (reader.fieldnames or []):
            raise UserError(f"quarantine list '{path}' has no 'path' column")
        return {str(Path(row["path"]).resolve()) for row in reader if row.get("path")}


class ImageDataset(Dataset):
    """Items are ``(image tensor, class index, sample index)``; the index finds the file again."""

    def __init__(
        self, index: Index, positions: list[int], pipeline: A.Compose, size: tuple[int, int]
    ):
        self.index, self.positions, self.pipeline = index, positions, pipeline
        self.resize = resize(*size)

    def __len__(self) -> int:
        return len(self.positions)

    def raw(self, i: int) -> np.ndarray:
        """The resized uint8 image before augmentation and normalization."""
        pos = self.positions[i]
        if self.index.cache is not None:
            return self.index.cache[pos]
        image = load_image(self.index.samples[pos].path, self.index.channels)
        return self.resize(image=image)["image"]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        pos = self.positions[i]
        return self.pipeline(image=self.raw(i))["image"], self.index.targets[pos], pos


class ImageClassificationData(ImageDataModule):
    """Labelled images from a folder, a CSV manifest, a SQL query or the built-in digits.

    Args:
        source: ``folder`` (one subfolder per class), ``csv`` (a ``path,label`` manifest),
            ``sql`` (``url`` + ``query``, paths under ``root``) or ``digits`` (scikit-learn's
            handwritten digits, written under ``root`` once).
        root: the image folder (``folder``), or where the digits are written (``digits``).
        manifest: the CSV file (``csv``); image paths are relative to its folder.
        url: a SQLAlchemy database URL (``sql``), e.g. ``sqlite:///labels.db``.
        query: the SQL query (``sql``) returning at least ``path`` and ``label`` columns.
        path_column: the manifest's column of image paths.
        label_column: the manifest's column of class labels.
        image_size: images are resized to this (one number for square, or ``[height, width]``).
        channels: 1 or 3; ``None`` takes 1 when every sampled image is grayscale, else 3.
        mean: per-channel normalization mean in 0..1; ``None`` measures it on the train split.
        std: per-channel normalization std in 0..1; ``None`` measures it on the train split.
        val_fraction: share of each class held for validation.
        test_fraction: share of each class held out as the test split (never used by training).
        split_seed: seed of the stratified split.
        split_file: a ``splits.csv`` from a run directory; reuses that run's split exactly.
        train_transforms: albumentations transforms for training images only.
        batch_size: images per batch.
        num_workers: DataLoader worker processes.
        cache_images: keep decoded, resized images in memory; ``None`` caches when they fit in 1 GiB.
        source_options: extra keyword arguments for a source registered by a plugin.
        quarantine: a ``quarantine.csv`` (from ``validate_data.py``); its files are left out.
        allow_changed: resume a run even though its data changed since it started.
        layout: ``auto`` reads ``root/{train,val,test}/<class>/`` as split folders (names in
            any case; ``valid``/``validation``/``dev`` and ``testing`` too) and other folders as
            classes; ``splits`` or ``classes`` settles a root that mixes both.
        strict: stop with exit 2 when any file or manifest row would be skipped, instead of
            listing it in ``skipped_files.csv`` and going on.
    """

    def __init__(
        self,
        source: str = "digits",
        root: str | None = None,
        manifest: str | None = None,
        url: str | None = None,
        query: str | None = None,
        path_column: str = "path",
        label_column: str = "label",
        image_size: int | list[int] = 32,
        channels: int | None = None,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        split_seed: int = 42,
        split_file: str | None = None,
        train_transforms: list[dict[str, Any]] | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
        cache_images: bool | None = None,
        source_options: dict[str, Any] | None = None,
        quarantine: str | None = None,
        allow_changed: bool = False,
        layout: str = "auto",
        strict: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.check_arguments()  # channels, batch size, image size, augmentations

    # --- what the model and the run record need to know -------------------------------------

    @property
    def class_counts(self) -> list[int]:
        counts = Counter(self.index.targets[p] for p in self.index.positions["train"])
        return [counts.get(i, 0) for i in range(self.num_classes)]

    # --- scanning ----------------------------------------------------------------------------

    def _load_samples(self) -> Found:
        hp = self.hparams
        options = dict(hp.source_options or {})
        options.update(root=hp.root, manifest=hp.manifest, path_column=hp.path_column)
        options.update(label_column=hp.label_column, url=hp.url, query=hp.query, layout=hp.layout)
        found = load_samples(hp.source, **options)
        if hp.quarantine:
            held = quarantined(Path(hp.quarantine))
            found.samples = [s for s in found.samples if str(s.path.resolve()) not in held]
        return found

    def _build_index(self) -> Index:
        hp = self.hparams
        found = self._load_samples()
        where = hp.manifest or hp.root or hp.source
        given = {s.split for s in found.samples if s.split}
        words = describe_draw(given, hp.val_fraction, hp.test_fraction, hp.split_file)
        announce(f"{found.layout}; {words}" if words else found.layout)
        if not found.samples:
            raise no_usable_data(where, found.skipped, "images")
        channels = hp.channels or guess_channels([s.path for s in found.samples])
        cache, skipped, keep, hashes, sizes = self._verify(found.samples, channels)
        skipped = found.skipped + skipped
        check_strict(skipped, hp.strict, where)
        samples = [found.samples[i] for i in keep]
        class_names = sorted({s.label for s in samples if s.split in (None, "train")})
        if len(class_names) < 2:
            found_names = (
                f"only class '{class_names[0]}'" if class_names else "no readable training images"
            )
            raise UserError(
                f"'{where}' has {found_names}; classification needs at least two classes"
            )
        splits = self._splits(samples, hashes)
        lookup = {name: i for i, name in enumerate(class_names)}
        targets = [lookup[s.label] for s in samples]
        root = data_root([s.path for s in samples])
        index = Index(
            samples, targets, splits, class_names, channels, skipped, cache, root, hashes, sizes
        )
        index.positions = {name: [i for i, s in enumerate(splits) if s == name] for name in SPLITS}
        return index

    def _verify(
        self, samples: list[Sample], channels: int
    ) -> tuple[list[np.ndarray] | None, list[tuple[str, str]], list[int], list[str], list[int]]:
        """Decode and hash every image once; unreadable ones are skipped and listed with the reason."""
        resizer = resize(*self.image_size)

        def decode(sample: Sample) -> tuple[np.ndarray, str, int] | str:
            try:
                image, digest, size = read_image(sample.path, channels)
            except UnreadableImage as exc:
                return str(exc)
            return resizer(image=image)["image"], digest, size

        results = parallel_map(decode, samples, "checking images")
        keep = [i for i, r in enumerate(results) if not isinstance(r, str)]
        skipped = [(str(samples[i].path), r) for i, r in enumerate(results) if isinstance(r, str)]
        h, w = self.image_size
        cached = use_cache(self.hparams.cache_images, len(keep), h * w * channels)
        cache = [results[i][0] for i in keep] if cached else None
        return cache, skipped, keep, [results[i][1] for i in keep], [results[i][2] for i in keep]

    def _splits(self, samples: list[Sample], hashes: list[str]) -> list[str]:
        hp = self.hparams
        if hp.split_file:
            return splits_from_file(hp.split_file, [s.path for s in samples])
        given = [s.split for s in samples]
        for warning in check_coverage([[s.label] for s in samples], given):
            print(f"warning: {warning}", file=sys.stderr)
        labels = [s.label for s in samples]
        return assign_splits(
            given, hashes, labels, hp.val_fraction, hp.test_fraction, hp.split_seed
        )

    def raw_image(self, position: int) -> np.ndarray:
        """The resized uint8 image of sample ``position`` (for galleries of mistakes)."""
        return ImageDataset(self.index, [position], finish([], [0.0], [1.0]), self.image_size).raw(
            0
        )

    # --- datasets and loaders ----------------------------------------------------------------

    def dataset(self, split: str, augment: bool = False) -> ImageDataset:
        if split not in SPLITS:
            raise UserError(f"unknown split '{split}'; use one of {', '.join(SPLITS)}")
        mean, std = self.normalization
        # Albumentations keeps its own random state: seed it from torch's (set by seed_everything).
        seed = torch.initial_seed() % 2**32 if augment else None
        pipeline = finish(self.augment if augment else [], mean, std, seed=seed)
        return ImageDataset(self.index, self.index.positions[split], pipeline, self.image_size)

    # --- the run record ----------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """What a later step (evaluate, export, serve) needs to rebuild the input pipeline."""
        mean, std = self.normalization
        counts = {s: len(p) for s, p in self.index.positions.items()}
        return {
            "class_names": self.class_names,
            "num_classes": self.num_classes,
            "channels": self.in_channels,
            "image_size": list(self.image_size),
            "resize": "stretch to image_size (albumentations Resize, bilinear)",
            "mean": mean,
            "std": std,
            "input_range": "uint8 0..255 scaled to 0..1, then (x - mean) / std",
            "split_counts": counts,
            "train_class_counts": dict(zip(self.class_names, self.class_counts, strict=True)),
            "skipped_files": len(self.index.skipped),
            "fingerprint": self.fingerprint,
        }

    def manifest_rows(self) -> list[tuple[str, str, int, str, str, str]]:
        index = self.index
        return [
            (str(s.path), h, n, s.label, split, self.hparams.source)
            for s, h, n, split in zip(
                index.samples, index.hashes, index.sizes, index.splits, strict=True
            )
        ]

    def write_records(self, run_dir: Path) -> None:
        """``splits.csv``, ``data_manifest.csv``, ``skipped_files.csv`` and ``data.json``."""
        index = self.index
        split_rows = (
            (str(sample.path), sample.label, split)
            for sample, split in zip(index.samples, index.splits, strict=True)
        )
        write_run_files(
            run_dir,
            self.manifest_rows(),
            ("path", "label", "split"),
            split_rows,
            index.skipped,
            self.describe(),
        )
