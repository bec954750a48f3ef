"""A base for galleries of the worst validation examples of the best epoch."""

from __future__ import annotations

from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer

from mlcycle.dense_analysis import Worst


class BestEpochWorst(Callback):
    """Keeps the ``limit`` worst validation examples of each epoch (``collect`` scores them from
    the outputs of ``validation_step``) and reports them when ``monitor`` improves, in
    ``on_train_epoch_end``, so the PNG always shows the epoch of ``checkpoints/best.ckpt``.
    Memory stays bounded: only ``limit`` examples are kept, whatever the size of the val split.
    """

    def __init__(self, limit: int = 12, monitor: str = "val/loss", mode: str = "min") -> None:
        self.limit, self.monitor, self.mode = limit, monitor, mode
        self.best: float | None = None
        self._worst = Worst(limit)
        self._fresh = False

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._worst = Worst(self.limit)

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
        self.collect(pl_module, outputs, self._worst)
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
        if not better:
            return
        self.best = value
        self.report(trainer, pl_module, self._worst.items())

    def collect(self, pl_module: LightningModule, outputs: dict[str, Any], worst: Worst) -> None:
        raise NotImplementedError

    def report(self, trainer: Trainer, pl_module: LightningModule, examples: list[Any]) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = state_dict.get("best")
