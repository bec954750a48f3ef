"""A base for callbacks that report on the validation outputs of the best epoch."""

from __future__ import annotations

from typing import Any

from lightning.pytorch import LightningModule, Trainer

from mlcycle.callbacks.figures_done import FinishesFigures


class BestEpochReport(FinishesFigures):
    """Gathers what it needs from each validation batch's outputs (``gather``) and reports
    (``emit``) when ``monitor`` improves. Reports run in ``on_train_epoch_end``, after the
    validation metrics are logged, so the PNG in the run directory always shows the epoch of
    ``checkpoints/best.ckpt``. Reports hand their figures to
    :func:`mlcycle.reports.figure_worker.draw_later`, which draws them off the training path;
    the fit's end waits for them.
    """

    def __init__(self, monitor: str, mode: str) -> None:
        self.monitor, self.mode = monitor, mode
        self.best: float | None = None
        self._fresh = False

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.start()

    def on_validation_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        *_: Any,
    ) -> None:
        if trainer.sanity_checking or not isinstance(outputs, dict):
            return
        if self.gather(pl_module, outputs):
            self._fresh = True

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self._fresh:
            return
        self._fresh = False
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        value = float(value)
        better = self.best is None or (
            value > self.best if self.mode == "max" else value < self.best
        )
        if better:
            self.best = value
            self.emit(trainer, pl_module)

    def start(self) -> None:
        """A validation epoch begins: forget the last one."""

    def gather(self, pl_module: LightningModule, outputs: dict[str, Any]) -> bool:
        """Keep what the report needs from one batch; false when the outputs hold none of it."""
        raise NotImplementedError

    def emit(self, trainer: Trainer, pl_module: LightningModule) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = state_dict.get("best")
