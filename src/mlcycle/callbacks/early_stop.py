"""Early stopping on the task's own metric (``model.early_stopping``), with one line when it
stops. The learning-rate schedule keeps the length planned for ``trainer.max_epochs``: the stop
only ends training, and the best checkpoint stays the best validated epoch."""

from __future__ import annotations

from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import EarlyStopping


class EarlyStop(EarlyStopping):
    """Lightning's ``EarlyStopping`` on ``monitor`` in ``mode``; says why and when it stopped."""

    def __init__(self, monitor: str, mode: str, patience: int, min_delta: float = 0.0) -> None:
        super().__init__(monitor=monitor, mode=mode, patience=patience, min_delta=min_delta)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if 0 < self.stopped_epoch < (trainer.max_epochs or 0) - 1 and trainer.is_global_zero:
            print(
                f"early stopping: {self.monitor} did not improve by more than {abs(self.min_delta):g} "
                f"for {self.patience} validation(s); stopped after epoch {self.stopped_epoch + 1} "
                f"of {trainer.max_epochs} (best {self.monitor} {float(self.best_score):.4f})"
            )
