"""compare.py's ``--time_limit``: the wall time of the whole command.

The clock starts with the command (its imports included). A share of the limit is kept for
the report written after the fits (:func:`report_reserve`); the candidate-folds spend the rest
in candidate order (a preset lists its quick candidates first). A candidate-fold starts only
when it is expected to end in time: a candidate's first fold is expected to take as long as the
median fold run so far, a later one as long as the candidate's earlier folds, and a candidate
whose remaining folds do not fit gives its time to the next ones. A fit that has started runs to
its end, so a fold slower than expected can still overrun. What is not run is listed with the
reason; the report skips its optional parts (permutation importance) once the limit is reached.
"""

from __future__ import annotations

import re
import statistics
import time

from mlcycle.core.errors import UserError

REPORT_SHARE = 0.15  # of the limit kept for the report (figures, importance, pages)
REPORT_MIN_S = 3.0  # measured: the report of a small table takes 2-4 s on one core
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


def report_reserve(seconds: float) -> float:
    """Seconds of a ``seconds`` limit kept for the report after the fits."""
    return min(seconds / 2, max(REPORT_MIN_S, REPORT_SHARE * seconds))


class Budget:
    """The time left for the candidate-folds, and why the next one is skipped (or None).

    ``started``: the ``time.monotonic()`` the command started at (default now); ``after``:
    seconds kept, beyond the report's, for work after it (``--export``)."""

    def __init__(
        self, seconds: float | None, folds: int, started: float | None = None, after: float = 0.0
    ) -> None:
        self.seconds = seconds
        self.folds = folds
        self.start = time.monotonic() if started is None else started
        self.reserve = 0.0 if seconds is None else report_reserve(seconds) + after
        self.kept = "the report and the export" if after else "the report"
        self.took: dict[str, list[float]] = {}  # seconds of each fold each candidate ran
        self.dropped: dict[str, str] = {}  # candidate -> why its remaining folds are skipped
        self.stopped: str | None = None  # why every later fold is skipped (Ctrl-C)

    def left(self) -> float:
        """Seconds left for fits (the report's share kept)."""
        if self.seconds is None:
            return float("inf")
        return self.seconds - self.reserve - self.elapsed()

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def deadline(self) -> float | None:
        """The ``time.monotonic()`` the whole command should end by (None: no limit)."""
        return None if self.seconds is None else self.start + self.seconds

    def expected(self, name: str, fold: int) -> tuple[float, int] | None:
        """Seconds each of ``name``'s folds from ``fold`` on is expected to take, and how many
        must still fit; None before any fold ran."""
        took = self.took.get(name, [])
        if took:
            return sum(took) / len(took), self.folds - fold
        every = [s for times in self.took.values() for s in times]
        return (statistics.median(every), 1) if every else None

    def skip_reason(self, name: str, fold: int) -> str | None:
        """Why ``name``'s fold ``fold`` does not start, or None (it starts)."""
        if self.stopped or self.seconds is None:
            return self.stopped
        if name in self.dropped:
            return self.dropped[name]
        left = self.left()
        guess = self.expected(name, fold)
        reason = None
        if left <= 0:
            reason = (
                f"the time limit ({shown(self.seconds)}) was reached ({shown(self.reserve)} of "
                f"it kept for {self.kept})"
            )
        elif guess and guess[0] * guess[1] > left:
            each, count = guess
            what = (
                f"its {count} remaining fold(s) take about {shown(each)} each"
                if name in self.took
                else f"its first fold takes about {shown(each)} (the median fold so far)"
            )
            reason = (
                f"{what} and {shown(left)} of the {shown(self.seconds)} limit was left "
                f"({shown(self.reserve)} kept for {self.kept})"
            )
        if reason:
            self.dropped[name] = reason
        return reason

    def ran(self, name: str, seconds: float) -> None:
        self.took.setdefault(name, []).append(seconds)
