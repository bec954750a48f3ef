"""Lightning's progress bar, redrawn by the clock instead of every batch."""

from __future__ import annotations

import time
from typing import Any

from lightning.pytorch.callbacks import Callback, ProgressBar, TQDMProgressBar


class TimedProgressBar(TQDMProgressBar):
    """``TQDMProgressBar`` that redraws at most every ``interval`` seconds, and at each bar's first
    and last batch. Lightning's bar redraws every ``refresh_rate`` batches, bypassing tqdm's own
    rate limit; with short steps (a small model, a fast GPU) that costs a millisecond of every step.

    Only public hooks are overridden: each ``on_*_batch_end`` passes a batch on to Lightning's
    own when :meth:`due`, and the bar draws it as it always does.

    Args:
        interval: seconds between redraws.
    """

    def __init__(self, interval: float = 0.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.interval = interval
        self._drawn = 0.0

    def due(self, current: int, total: int | float | None) -> bool:
        """Whether batch ``current`` of ``total`` is drawn: the first, the last, or the first
        once ``interval`` seconds have passed since the last one drawn."""
        now = time.monotonic()
        if current == total or current == 1 or now - self._drawn >= self.interval:
            self._drawn = now
            return True
        return False

    # Lightning's hooks (a dataloader index, where given, passed on): a batch goes on to the
    # bar only when it is due.
    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.due(batch_idx + 1, self.train_progress_bar.total):
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_validation_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int, *idx: int
    ) -> None:
        if self.due(batch_idx + 1, self.val_progress_bar.total):
            super().on_validation_batch_end(trainer, pl_module, outputs, batch, batch_idx, *idx)

    def on_test_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int, *idx: int
    ) -> None:
        if self.due(batch_idx + 1, self.test_progress_bar.total):
            super().on_test_batch_end(trainer, pl_module, outputs, batch, batch_idx, *idx)

    def on_predict_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int, *idx: int
    ) -> None:
        if self.due(batch_idx + 1, self.predict_progress_bar.total):
            super().on_predict_batch_end(trainer, pl_module, outputs, batch, batch_idx, *idx)


def progress_bars(trainer_config: dict[str, Any], added: list[Callback]) -> list[Callback]:
    """``[TimedProgressBar()]`` unless the run has no bar or brings its own."""
    if trainer_config.get("enable_progress_bar") is False:
        return []
    given = list(trainer_config.get("callbacks") or []) + list(added)
    if any(isinstance(c, ProgressBar) for c in given):
        return []
    return [TimedProgressBar()]
