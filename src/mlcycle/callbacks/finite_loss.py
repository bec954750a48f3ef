"""Stop at the first NaN or infinite training loss, before it reaches a checkpoint."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from mlcycle.core.errors import UserError


class NonFiniteLoss(UserError):
    """The loss became NaN or infinite; the last good checkpoint is kept as it was."""

    exit_code = 1


class FiniteLossGuard(Callback):
    """Raises :class:`NonFiniteLoss` at once, so no checkpoint is written with broken weights."""

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None or _finite(loss):
            return
        last = Path(trainer.default_root_dir) / "checkpoints" / "last.ckpt"
        kept = (
            f"the last good checkpoint is {last}"
            if last.exists()
            else "no checkpoint was written yet"
        )
        raise NonFiniteLoss(
            f"training loss became {float(loss)} at epoch {trainer.current_epoch}, step {trainer.global_step}; "
            f"stopped, {kept}. Lower --model.lr, try --trainer.precision=32, or check the data"
        )


def _finite(loss: torch.Tensor) -> bool:
    """Whether every value of ``loss`` is finite; a scalar is read once (``item``), which on the
    CPU costs far less than ``isfinite``, ``all`` and ``bool`` (two tensor operations)."""
    if loss.numel() == 1:
        return math.isfinite(loss.item())
    return bool(torch.isfinite(loss).all())
