"""A base for galleries of the worst validation examples of the best epoch."""

from __future__ import annotations

from typing import Any

from lightning.pytorch import LightningModule, Trainer

from mlcycle.callbacks.best_epoch import BestEpochReport
from mlcycle.reports.mask_box_errors import Worst


class BestEpochWorst(BestEpochReport):
    """Keeps the ``limit`` worst validation examples of each epoch (``collect`` scores them from
    the outputs of ``validation_step``) and reports them for the best epoch. Memory stays
    bounded: only ``limit`` examples are kept, whatever the size of the val split.
    """

    def __init__(self, limit: int = 12, monitor: str = "val/loss", mode: str = "min") -> None:
        super().__init__(monitor, mode)
        self.limit = limit
        self._worst = Worst(limit)

    def start(self) -> None:
        self._worst = Worst(self.limit)

    def gather(self, pl_module: LightningModule, outputs: dict[str, Any]) -> bool:
        self.collect(pl_module, outputs, self._worst)
        return True

    def emit(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.report(trainer, pl_module, self._worst.items())

    def collect(self, pl_module: LightningModule, outputs: dict[str, Any], worst: Worst) -> None:
        raise NotImplementedError

    def report(self, trainer: Trainer, pl_module: LightningModule, examples: list[Any]) -> None:
        raise NotImplementedError
