"""The DataLoader every data module builds for a split."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from mlcycle.core.errors import UserError


def split_loader(
    dataset: Dataset,
    split: str,
    batch_size: int,
    workers: int,
    shuffle: bool,
    collate_fn: Callable[[list[Any]], Any] | None = None,
) -> DataLoader:
    """Batches of ``dataset``: persistent workers, pinned memory on CUDA machines, the last
    short batch dropped when shuffling (training); an empty split is a one-line error."""
    if len(dataset) == 0:
        raise UserError(f"the {split} split is empty; check data.val_fraction / data.test_fraction")
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=torch.cuda.is_available(),
        drop_last=shuffle and len(dataset) > batch_size,
        collate_fn=collate_fn,
    )
