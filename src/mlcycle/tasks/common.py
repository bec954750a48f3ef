"""What the segmentation and detection tasks share with classification: optimizer and schedule."""

from __future__ import annotations

from typing import Any

from lightning.pytorch import LightningModule

from mlcycle.errors import UserError
from mlcycle.tasks.optim import SCHEDULERS, optimizer_class


def check_common(lr: float, optimizer: str) -> None:
    """Fail on a bad learning rate or optimizer name before any data is read."""
    if lr <= 0:
        raise UserError(f"model.lr={lr} must be above 0")
    optimizer_class(optimizer)


def configure_optimizers(module: LightningModule) -> Any:
    """The optimizer named by ``hparams.optimizer`` and the per-step schedule ``hparams.scheduler``
    (cosine, onecycle or constant), as ClassificationTask builds them."""
    hp = module.hparams
    options = {"lr": hp.lr, "weight_decay": hp.weight_decay, **(hp.optimizer_options or {})}
    try:
        optimizer = optimizer_class(hp.optimizer)(module.parameters(), **options)
    except TypeError as exc:
        raise UserError(f"model.optimizer_options do not fit {hp.optimizer}: {exc}") from exc
    build = SCHEDULERS[hp.scheduler]
    if build is None:
        return optimizer
    total = int(module.trainer.estimated_stepping_batches)
    epochs = max(1, module.trainer.max_epochs or 1)
    warmup = int(round(hp.warmup_epochs * total / epochs))
    scheduler = build(optimizer, total_steps=max(1, total), warmup_steps=warmup)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
