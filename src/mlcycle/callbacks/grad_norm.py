"""The size of the gradients: ``train/grad_norm`` each step, its mean and max each epoch."""

from __future__ import annotations

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch.optim import Optimizer


def total_norm(grads: list[torch.Tensor]) -> torch.Tensor:
    """The L2 norm of all ``grads`` as one vector, in float32. On one device this skips
    ``get_total_norm``'s grouping, which costs more than the norms themselves on a small model."""
    with torch.no_grad():
        device = grads[0].device
        if any(g.device != device for g in grads):
            return torch.nn.utils.get_total_norm(grads, norm_type=2.0).float()
        norms = torch._foreach_norm(grads, 2.0, dtype=torch.float32)
        return torch.linalg.vector_norm(torch.stack(norms))


class GradNorm(Callback):
    """Logs the total L2 norm of all gradients just before an optimizer step (after AMP
    unscaling, before clipping): ``train/grad_norm`` at the logger's cadence
    (``log_every_n_steps``), ``train/grad_norm_mean`` and ``train/grad_norm_max`` per epoch. The
    fit diagnosis reads the epoch values to flag exploding and vanishing gradients.

    The norm is taken on every ``every``-th optimizer step, on each epoch's first step and on
    each step the logger writes; the epoch's mean and max are over those steps. Each norm is
    one pass over every gradient: about a quarter of a millisecond for a small model on the
    CPU, most of its step's fixed cost. A gradient that explodes stays large for many steps,
    which a sample of one step in ``every`` sees; ``every=1`` takes every step. The epoch
    figures stay tensors (no host sync per step) until they are logged once an epoch.

    Args:
        every: steps between two norms (1: each step).
    """

    def __init__(self, every: int = 8) -> None:
        if every < 1:
            raise ValueError(f"GradNorm(every={every}): give a step count of at least 1")
        self.every = every
        self._sum: torch.Tensor | None = None
        self._max: torch.Tensor | None = None
        self._steps = 0  # norms taken this epoch
        self._step = 0  # the trainer's global step, counted here (its property costs 20 us)
        self._log_every = 1

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._sum = self._max = None
        self._steps = 0
        self._step = trainer.global_step
        self._log_every = max(trainer.log_every_n_steps, 1)

    def on_before_optimizer_step(
        self, trainer: Trainer, pl_module: LightningModule, optimizer: Optimizer
    ) -> None:
        step = self._step  # the optimizer's step is not counted yet here
        self._step += 1
        # The logger writes a step's value only every log_every_n_steps, at the steps where
        # Lightning's should_update_logs holds ((steps done + 1) % n == 0).
        logged = (step + 1) % self._log_every == 0
        if not (logged or self._steps == 0 or step % self.every == 0):
            return  # each epoch's first step is taken, so a short epoch has its figures too
        grads = [p.grad for group in optimizer.param_groups for p in group["params"]]
        grads = [g for g in grads if g is not None]
        if not grads:
            return
        norm = total_norm(grads)
        self._sum = norm if self._sum is None else self._sum + norm
        self._max = norm if self._max is None else torch.maximum(self._max, norm)
        self._steps += 1
        if logged:
            pl_module.log("train/grad_norm", norm, on_step=True, on_epoch=False, batch_size=1)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._sum is None:
            return
        epoch = {"train/grad_norm_mean": self._sum / self._steps, "train/grad_norm_max": self._max}
        pl_module.log_dict(epoch, on_step=False, on_epoch=True, batch_size=1, sync_dist=True)
