"""Fine-tuning's frozen start (``model.freeze_epochs``): the first epochs train only the head,
with the backbone frozen, its BatchNorm statistics included; then the backbone unfreezes, all
at once or one layer group per epoch from the top (``model.unfreeze: gradual``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.strategies import DDPStrategy

from mlcycle.core.errors import UserError
from mlcycle.models.groups import LayerGroup


class FreezeBackbone(Callback):
    """Sets, at the start of every training epoch, which of ``groups`` (first layers first, the
    head last) train. A frozen group's parameters have ``requires_grad`` off (the optimizer
    skips them: no gradient, no weight decay) and its modules are in eval mode, so BatchNorm
    keeps its running statistics and dropout is off.

    Args:
        groups: the network's layer groups (``mlcycle.models.groups.layer_groups``).
        freeze_epochs: epochs that train the head alone.
        gradual: after them, unfreeze one more group per epoch from the top, not all at once.
    """

    def __init__(self, groups: list[LayerGroup], freeze_epochs: int, gradual: bool = False):
        self.groups = groups
        self.freeze_epochs = freeze_epochs
        self.gradual = gradual
        self.training = len(groups)  # groups that train now, counted from the head

    def trainable(self, epoch: int) -> int:
        """How many groups, counted from the head, train in ``epoch`` (0-based)."""
        if epoch < self.freeze_epochs:
            return 1
        if not self.gradual:
            return len(self.groups)
        return min(len(self.groups), 2 + epoch - self.freeze_epochs)

    def apply(self, epoch: int) -> None:
        """Freeze and unfreeze the groups as ``epoch`` wants them."""
        self.training = self.trainable(epoch)
        first = len(self.groups) - self.training
        for i, group in enumerate(self.groups):
            train = i >= first
            for p in group.parameters():
                p.requires_grad_(train)
            for module in group.modules:
                module.train(train)

    def release(self) -> None:
        """Everything trainable again, in training mode."""
        self.apply(max(self.freeze_epochs, 0) + len(self.groups))

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        strategy = trainer.strategy
        if isinstance(strategy, DDPStrategy) and not strategy._ddp_kwargs.get(
            "find_unused_parameters"
        ):
            raise UserError(
                "model.freeze_epochs with DDP needs --trainer.strategy=ddp_find_unused_parameters_true "
                "(frozen layers get no gradient)"
            )

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        before, epoch = self.training, trainer.current_epoch
        self.apply(epoch)
        if trainer.is_global_zero and (epoch == 0 or self.training != before):
            print(self.line(epoch))

    def line(self, epoch: int) -> str:
        """What trains in ``epoch``, for the log."""
        n, frozen = len(self.groups), len(self.groups) - self.training
        if self.training == 1:
            head = ", ".join(self.groups[-1].names) or "head"
            return f"fine-tuning: epoch {epoch + 1} trains the head ({head}) alone; {frozen} layer group(s) frozen"
        if frozen == 0:
            return f"fine-tuning: epoch {epoch + 1} trains all {n} layer groups"
        opened = ", ".join(self.groups[frozen].names)
        return f"fine-tuning: epoch {epoch + 1} unfreezes {opened}; {self.training} of {n} layer groups train"

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.release()  # a run that ended frozen leaves a plain network to export


@contextmanager
def frozen_as_at_start(module: LightningModule) -> Iterator[FreezeBackbone | None]:
    """``module`` frozen as its first training epoch has it (its own ``FreezeBackbone``, from
    ``configure_callbacks``), then released: what the learning-rate finder sweeps."""
    hook = getattr(module, "configure_callbacks", None)
    callbacks = hook() if callable(hook) else []
    freeze = next((c for c in callbacks or [] if isinstance(c, FreezeBackbone)), None)
    if freeze is None:
        yield None
        return
    freeze.apply(0)
    try:
        yield freeze
    finally:
        freeze.release()
