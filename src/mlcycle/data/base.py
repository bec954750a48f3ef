"""What the image data modules (classification, segmentation, detection) share.

A subclass calls ``check_arguments()`` after ``save_hyperparameters()``, and provides
``_build_index()`` (an index with ``class_names``, ``channels`` and ``positions`` per split),
``raw_image(position)`` (the resized uint8 image) and ``dataset(split, augment)``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, Dataset

from mlcycle.data.records import (
    check_pixels,
    check_unchanged,
    fingerprint,
    measure_normalization,
    sample_positions,
)
from mlcycle.data.transforms import build_augmentations
from mlcycle.errors import UserError


class ImageDataModule(LightningDataModule):
    """Checked shared arguments, the lazily built index, normalization and the loaders."""

    collate_fn: Callable[[list[Any]], Any] | None = None  # None: torch's default collate

    def check_arguments(self) -> None:
        """Check ``channels``, ``batch_size``, ``image_size`` and ``train_transforms`` before
        any data is read."""
        hp = self.hparams
        if hp.channels not in (None, 1, 3):
            raise UserError(
                f"data.channels={hp.channels} is not supported; use 1, 3 or leave it unset"
            )
        if hp.batch_size < 1:
            raise UserError(f"data.batch_size={hp.batch_size} must be at least 1")
        self.image_size = check_pixels(hp.image_size, "data.image_size")
        self.augment = build_augmentations(hp.train_transforms, "data.train_transforms")
        self._index: Any = None
        self._norm: tuple[list[float], list[float]] | None = None

    # --- what the model and the run record need -----------------------------------------------

    @property
    def index(self) -> Any:
        if self._index is None:
            self._index = self._build_index()
        return self._index

    @property
    def class_names(self) -> list[str]:
        return self.index.class_names

    @property
    def num_classes(self) -> int:
        return len(self.index.class_names)

    @property
    def in_channels(self) -> int:
        return self.index.channels

    @property
    def normalization(self) -> tuple[list[float], list[float]]:
        """``data.mean`` / ``data.std`` when given, else measured on up to 1,024 training
        images (a fixed sample)."""
        if self._norm is None:
            hp, c = self.hparams, self.in_channels
            if hp.mean is not None and hp.std is not None:
                if len(hp.mean) != c or len(hp.std) != c:
                    raise UserError(f"data.mean and data.std need {c} value(s), one per channel")
                self._norm = (list(hp.mean), list(hp.std))
            else:
                picks = sample_positions(self.index.positions["train"])
                mean, std = measure_normalization((self.raw_image(p) for p in picks), c)
                self._norm = (
                    list(mean if hp.mean is None else hp.mean),
                    list(std if hp.std is None else hp.std),
                )
        return self._norm

    def _build_index(self) -> Any:
        raise NotImplementedError

    def raw_image(self, position: int) -> np.ndarray:
        raise NotImplementedError

    def dataset(self, split: str, augment: bool = False) -> Dataset:
        raise NotImplementedError

    def manifest_rows(self) -> list[tuple[str, str, int, str, str, str]]:
        """``(path, sha256, bytes, what, split, source)`` of every file the data is read from."""
        raise NotImplementedError

    # --- the run record -----------------------------------------------------------------------

    @property
    def fingerprint(self) -> str:
        """sha256 over every file's path below the data root, content hash, role and split."""
        return fingerprint(self.manifest_rows(), self.index.root)

    def check_unchanged_since(self, run_dir: Path) -> None:
        """Stop a resume whose data changed since the run started, unless allowed."""
        check_unchanged(run_dir, self.manifest_rows(), self.hparams.allow_changed)

    # --- loaders ------------------------------------------------------------------------------

    def _loader(self, split: str, shuffle: bool, augment: bool) -> DataLoader:
        dataset = self.dataset(split, augment=augment)
        if len(dataset) == 0:
            raise UserError(
                f"the {split} split is empty; check data.val_fraction / data.test_fraction"
            )
        workers = self.hparams.num_workers
        return DataLoader(
            dataset,
            batch_size=self.hparams.batch_size,
            shuffle=shuffle,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
            drop_last=shuffle and len(dataset) > self.hparams.batch_size,
            collate_fn=type(self).collate_fn,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True, augment=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False, augment=False)

    def split_dataloader(self, split: str) -> DataLoader:
        """Any split without augmentation; used by evaluation, never by training."""
        return self._loader(split, shuffle=False, augment=False)
