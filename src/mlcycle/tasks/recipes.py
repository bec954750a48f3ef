"""Fine-tuning recipes every task shares, set as keys of the task (``model.<key>``):

* ``freeze_epochs``: the first N epochs train the head alone, the backbone frozen (BatchNorm
  statistics included); ``unfreeze``: ``all`` at once after them, or ``gradual`` (one layer
  group per epoch from the top). The schedule restarts when the backbone unfreezes.
* ``lr_decay``: discriminative learning rates; the head trains at ``lr``, the layer group
  before it at ``lr * lr_decay``, the one before at ``lr * lr_decay**2``, ...
* ``init_from``: an earlier run's best checkpoint as the start (``mlcycle.tasks.init_from``).
* ``early_stopping``: a patience (``5``) or ``{patience: 5, min_delta: 0}`` on the task's metric.
* ``ema``: the decay of an exponential moving average of the weights (``0.999``), used for
  validation, the checkpoints and export.

The layer groups come from the network (``mlcycle.models.groups.layer_groups``).
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch import Callback, LightningModule
from torch import nn

from mlcycle.callbacks.early_stop import EarlyStop
from mlcycle.callbacks.ema import EMA
from mlcycle.callbacks.freeze import FreezeBackbone
from mlcycle.core.errors import UserError
from mlcycle.models.groups import layer_groups
from mlcycle.tasks.optim import parameter_groups

UNFREEZE = ("all", "gradual")
EARLY_STOPPING_KEYS = ("patience", "min_delta")


def check_recipes(
    freeze_epochs: int,
    unfreeze: str,
    lr_decay: float,
    early_stopping: int | dict[str, Any] | None,
    ema: float | None,
) -> None:
    """Fail on a bad recipe key before any data is read."""
    if freeze_epochs < 0:
        raise UserError(f"model.freeze_epochs={freeze_epochs} must be 0 or more")
    if unfreeze not in UNFREEZE:
        raise UserError(f"model.unfreeze={unfreeze!r} is not one of: {', '.join(UNFREEZE)}")
    if not 0 < lr_decay <= 1:
        raise UserError(f"model.lr_decay={lr_decay} must be in (0, 1]; 1 means one rate for all")
    early_stopping_options(early_stopping)
    if ema is not None and not 0 < ema < 1:
        raise UserError(f"model.ema={ema} must be a decay in (0, 1), e.g. 0.999; or null")


def early_stopping_options(value: int | dict[str, Any] | None) -> dict[str, Any] | None:
    """``model.early_stopping`` as ``{patience, min_delta}``; ``None`` when off."""
    if value is None:
        return None
    options = {"patience": value} if isinstance(value, int) else dict(value)
    unknown = sorted(set(options) - set(EARLY_STOPPING_KEYS))
    if unknown or "patience" not in options:
        raise UserError(
            f"model.early_stopping takes a patience or {{patience: 5, min_delta: 0}}; got {value!r}"
        )
    patience, min_delta = options["patience"], float(options.get("min_delta", 0.0))
    if isinstance(patience, float) and patience.is_integer():
        patience = int(patience)  # a YAML mapping's values arrive as floats
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
        raise UserError(
            f"model.early_stopping.patience={patience!r} must be an integer of 1 or more"
        )
    if min_delta < 0:
        raise UserError(f"model.early_stopping.min_delta={min_delta} must be 0 or more")
    return {"patience": patience, "min_delta": min_delta}


def network(module: LightningModule, key: str) -> nn.Module:
    """The task's network (``self.model``), which the recipe ``key`` acts on."""
    found = getattr(module, "model", None)
    if not isinstance(found, nn.Module):
        raise UserError(
            f"model.{key} acts on self.model; {type(module).__name__} has no network there"
        )
    return found


def optimizer_params(module: LightningModule) -> Any:
    """The optimizer's parameters: all of them, or with ``lr_decay`` below 1 one group per
    layer group at its decayed rate."""
    hp = module.hparams
    decay = hp.get("lr_decay", 1.0)
    if decay == 1.0:
        return module.parameters()
    groups = [g.parameters() for g in layer_groups(network(module, "lr_decay"))]
    return parameter_groups(module, groups, hp.lr, decay)


def unfreeze_step(freeze_epochs: int, total_steps: int, epochs: int) -> int:
    """The optimizer step at which the backbone unfreezes (0: the schedule never restarts)."""
    return freeze_epochs * total_steps // epochs if 0 < freeze_epochs < epochs else 0


def recipe_callbacks(module: LightningModule) -> list[Callback]:
    """The callbacks the recipe keys ask for (``Task.configure_callbacks`` returns them)."""
    hp = module.hparams
    callbacks: list[Callback] = []
    if hp.get("freeze_epochs") or hp.get("unfreeze") == "gradual":
        groups = layer_groups(network(module, "freeze_epochs"))
        callbacks.append(FreezeBackbone(groups, hp.freeze_epochs, hp.unfreeze == "gradual"))
    stop = early_stopping_options(hp.get("early_stopping"))
    if stop is not None:
        metric, mode = module.monitor
        callbacks.append(EarlyStop(metric, mode, **stop))
    if hp.get("ema") is not None:
        callbacks.append(EMA(hp.ema))
    return callbacks
