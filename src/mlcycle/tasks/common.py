"""What the segmentation and detection tasks share with classification: optimizer and schedule,
and the GPU options ``channels_last`` and ``compile``."""

from __future__ import annotations

from typing import Any

import torch
from lightning.fabric.utilities.apply_func import apply_to_collection
from lightning.pytorch import LightningModule

from mlcycle.core.errors import UserError
from mlcycle.tasks.optim import SCHEDULES, optimizer_class, schedule
from mlcycle.tasks.recipes import optimizer_params, unfreeze_step


def check_common(lr: float, optimizer: str) -> None:
    """Fail on a bad learning rate or optimizer name before any data is read."""
    if lr <= 0:
        raise UserError(f"model.lr={lr} must be above 0")
    optimizer_class(optimizer)


# torch.compile's modes, and the backends worth naming (aot_eager and eager need no C compiler:
# they find whether a failure is the graph capture's or inductor's code generation).
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
COMPILE_BACKENDS = ("inductor", "aot_eager", "eager", "cudagraphs")


def compile_options(compile: bool | str) -> dict[str, str] | None:
    """``model.compile`` as ``torch.compile`` keyword arguments; ``None`` when off."""
    if compile is False:
        return None
    if compile is True:
        return {}
    if compile in COMPILE_MODES:
        return {"mode": compile}
    if compile in COMPILE_BACKENDS:
        return {"backend": compile}
    choices = ", ".join((*COMPILE_MODES, *COMPILE_BACKENDS))
    raise UserError(f"model.compile={compile!r} is not true, false or one of: {choices}")


def use_channels_last(network: torch.nn.Module) -> None:
    """Store ``network``'s 4-D weights channels-last (NHWC), in place (the parameters stay the
    same objects, so an optimizer built on them keeps working), and convert its image inputs
    on every call: a forward pre-hook, so it runs inside a compiled network's graph too."""
    network.to(memory_format=torch.channels_last)
    if not getattr(network, "_mlcycle_channels_last", False):
        network.register_forward_pre_hook(_channels_last_inputs)
        network._mlcycle_channels_last = True


def channels_last_batch(batch: Any) -> Any:
    """``batch`` with its image tensors (4-D floating point) channels-last; the rest as it was."""

    def convert(t: torch.Tensor) -> torch.Tensor:
        if t.dim() == 4 and t.is_floating_point():
            return t.contiguous(memory_format=torch.channels_last)
        return t

    return apply_to_collection(batch, torch.Tensor, convert)


def _channels_last_inputs(module: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return channels_last_batch(args)  # a named function: a module with it still pickles


def configure_optimizers(module: LightningModule) -> Any:
    """The optimizer named by ``hparams.optimizer`` and the per-step schedule ``hparams.scheduler``
    (cosine, onecycle or constant), as ClassificationTask builds them; with ``lr_decay`` one
    parameter group per layer group, and with ``freeze_epochs`` the schedule restarts when the
    backbone unfreezes (``mlcycle.tasks.recipes``)."""
    hp = module.hparams
    options = {"lr": hp.lr, "weight_decay": hp.weight_decay, **(hp.optimizer_options or {})}
    try:
        optimizer = optimizer_class(hp.optimizer)(optimizer_params(module), **options)
    except TypeError as exc:
        raise UserError(f"model.optimizer_options do not fit {hp.optimizer}: {exc}") from exc
    if SCHEDULES[hp.scheduler] is None:  # constant: no steps to count (nor a Trainer needed)
        return optimizer
    # Optimizer steps, not batches: Lightning divides by trainer.accumulate_grad_batches.
    total = int(module.trainer.estimated_stepping_batches)
    epochs = max(1, module.trainer.max_epochs or 1)
    warmup = int(round(hp.warmup_epochs * total / epochs))
    restart = unfreeze_step(hp.get("freeze_epochs", 0), total, epochs)
    scheduler = schedule(optimizer, hp.scheduler, total, warmup, restart)
    if scheduler is None:
        return optimizer
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
