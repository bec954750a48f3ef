"""The size of the gradients: ``train/grad_norm`` each step, its mean and max each epoch."""

from __future__ import annotations

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch.optim import Optimizer


class GradNorm(Callback):
    """Logs the total L2 norm of all gradients just before each optimizer step (after AMP
    unscaling, before clipping): ``train/grad_norm`` per step, ``train/grad_norm_mean`` and
    ``train/grad_norm_max`` per epoch. The fit diagnosis reads the epoch values to flag
    exploding and vanishing gradients."""

    def on_before_optimizer_step(
        self, trainer: Trainer, pl_module: LightningModule, optimizer: Optimizer
    ) -> None:
        grads = [p.grad for group in optimizer.param_groups for p in group["params"]]
        grads = [g for g in grads if g is not None]
        if not grads:
            return
        norm = torch.nn.utils.get_total_norm(grads, norm_type=2.0).detach().float()
        # batch_size=1: the epoch mean is over steps, whatever the batch holds.
        log = {"batch_size": 1, "logger": True}
        pl_module.log("train/grad_norm", norm, on_step=True, on_epoch=False, **log)
        pl_module.log("train/grad_norm_mean", norm, on_step=False, on_epoch=True, **log)
        pl_module.log(
            "train/grad_norm_max", norm, on_step=False, on_epoch=True, reduce_fx="max", **log
        )
