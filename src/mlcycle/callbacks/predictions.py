"""A base for callbacks that look at the validation predictions of the best epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from matplotlib.figure import Figure
from PIL import Image

from mlcycle.callbacks.best_epoch import BestEpochReport
from mlcycle.reports.figures import save


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


def publish(trainer: Trainer, fig: Figure, tag: str, filename: str) -> Path:
    """Write ``fig`` as a PNG in the run directory and send that image to TensorBoard (when
    used): the figure is rendered once, not once per destination (it runs at epoch end)."""
    path = Path(trainer.default_root_dir) / filename
    save(fig, path)
    loggers = [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
    if loggers:
        with Image.open(path) as png:
            pixels = np.asarray(png.convert("RGB"))
        for logger in loggers:
            logger.experiment.add_image(
                tag, pixels, global_step=trainer.current_epoch, dataformats="HWC"
            )
    return path
