"""One summary line per epoch for tasks whose metrics FitDiagnosis does not read (detection)."""

from __future__ import annotations

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_only


class EpochLine(Callback):
    """Prints ``epoch 3/8  train/loss 0.9804  val/map 0.5709  val/map_50 0.7723``."""

    def __init__(self, keys: tuple[str, ...] = ("train/loss", "val/loss")) -> None:
        self.keys = keys

    @rank_zero_only
    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        parts = [f"{k} {float(metrics[k]):.4f}" for k in self.keys if k in metrics]
        if not parts:
            return
        epochs = (
            f"{trainer.current_epoch + 1}/{trainer.max_epochs}"
            if trainer.max_epochs
            else str(trainer.current_epoch)
        )
        bar = trainer.progress_bar_callback
        (bar.print if bar is not None and hasattr(bar, "print") else print)(
            f"epoch {epochs}  " + "  ".join(parts)
        )
