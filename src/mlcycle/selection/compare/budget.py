"""compare.py's ``--time_limit``: the wall time the candidate-folds may take.

The budget is spent in candidate order (a preset lists its quick candidates first). A
candidate-fold starts only while time is left and, after the candidate's first fold, only when
its remaining folds, timed as its earlier ones, fit in the time left: a candidate that cannot
finish gives its time to the next ones. A fit that has started runs to its end, so the
comparison overruns the limit by at most one fit. What is not run is listed with the reason.
"""

from __future__ import annotations

import re
import time

from mlcycle.core.errors import UserError

UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(min|h|m|s|)")


def parse_duration(value: str | float | None) -> float | None:
    """Seconds of ``600``, ``90s``, ``10m``, ``1h`` or ``1h30m``; None stays None."""
    if value is None:
        return None
    text = str(value).strip().lower()
    parts = _PART.findall(text)
    if not parts or _PART.sub("", text).strip() or not text:
        raise UserError(
            f"--time_limit '{value}': give seconds (600) or a duration (90s, 10m, 1h, 1h30m)"
        )
    seconds = sum(float(n) * UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise UserError(f"--time_limit '{value}' must be more than 0 seconds")
    return seconds


def shown(seconds: float) -> str:
    """``600`` -> ``10m``, ``90`` -> ``1m30s``."""
    minutes, rest = divmod(round(seconds), 60)
    return (
        f"{minutes}m{rest:02d}s" if minutes and rest else f"{minutes}m" if minutes else f"{rest}s"
    )


class Budget:
    """The time left for the candidate-folds, and why the next one is skipped (or None)."""

    def __init__(self, seconds: float | None, folds: int) -> None:
        self.seconds = seconds
        self.folds = folds
        self.start = time.monotonic()
        self.took: dict[str, list[float]] = {}  # seconds of each fold each candidate ran
        self.dropped: dict[str, str] = {}  # candidate -> why its remaining folds are skipped
        self.stopped: str | None = None  # why every later fold is skipped (Ctrl-C)

    def left(self) -> float:
        return float("inf") if self.seconds is None else self.seconds - self.elapsed()

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def skip_reason(self, name: str, fold: int) -> str | None:
        """Why ``name``'s fold ``fold`` does not start, or None (it starts)."""
        if self.stopped or self.seconds is None:
            return self.stopped
        if name in self.dropped:
            return self.dropped[name]
        left = self.left()
        took = self.took.get(name, [])
        reason = None
        if left <= 0:
            reason = f"the time limit ({shown(self.seconds)}) was reached"
        elif took and sum(took) / len(took) * (self.folds - fold) > left:
            each = sum(took) / len(took)
            reason = (
                f"its {self.folds - fold} remaining fold(s) take about {shown(each)} each and "
                f"{shown(left)} of the {shown(self.seconds)} limit was left"
            )
        if reason:
            self.dropped[name] = reason
        return reason

    def ran(self, name: str, seconds: float) -> None:
        self.took.setdefault(name, []).append(seconds)
