"""Lightning's progress bar, redrawn by the clock instead of every batch."""

from __future__ import annotations

import time
from typing import Any

from lightning.pytorch.callbacks import Callback, ProgressBar, TQDMProgressBar


class TimedProgressBar(TQDMProgressBar):
    """``TQDMProgressBar`` that redraws at most every ``interval`` seconds, and at each bar's last
    batch. Lightning's bar redraws every ``refresh_rate`` batches, bypassing tqdm's own rate
    limit; with short steps (a small model, a fast GPU) that costs a millisecond of every step.

    Args:
        interval: seconds between redraws.
    """

    def __init__(self, interval: float = 0.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.interval = interval
        self._drawn = 0.0

    def _should_update(self, current: int, total: int) -> bool:  # lightning==2.6's hook
        if not self.is_enabled:
            return False
        now = time.monotonic()
        if current == total or current == 1 or now - self._drawn >= self.interval:
            self._drawn = now
            return True
        return False


def progress_bars(trainer_config: dict[str, Any], added: list[Callback]) -> list[Callback]:
    """``[TimedProgressBar()]`` unless the run has no bar or brings its own."""
    if trainer_config.get("enable_progress_bar") is False:
        return []
    given = list(trainer_config.get("callbacks") or []) + list(added)
    if any(isinstance(c, ProgressBar) for c in given):
        return []
    return [TimedProgressBar()]
