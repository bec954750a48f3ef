"""A base for callbacks that look at the validation predictions of the best epoch."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer

from mlcycle.callbacks.best_epoch import BestEpochReport


class BestEpochPredictions(BestEpochReport):
    """Gathers validation ``probs``, ``target`` and ``index``; ``report`` gets them all, for
    the best epoch."""

    def __init__(self, monitor: str = "val/f1", mode: str = "max") -> None:
        super().__init__(monitor, mode)
        self._parts: list[dict[str, torch.Tensor]] = []

    def start(self) -> None:
        self._parts = []

    def gather(self, pl_module: LightningModule, outputs: dict[str, Any]) -> bool:
        if "probs" not in outputs:
            return False
        self._parts.append({k: outputs[k].detach().cpu() for k in ("probs", "target", "index")})
        return True

    def emit(self, trainer: Trainer, pl_module: LightningModule) -> None:
        gathered = {k: torch.cat([p[k] for p in self._parts]) for k in ("probs", "target", "index")}
        self.report(trainer, pl_module, gathered)

    def report(
        self, trainer: Trainer, pl_module: LightningModule, gathered: dict[str, torch.Tensor]
    ) -> None:
        raise NotImplementedError
