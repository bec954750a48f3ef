"""Time windows: ``--window 6h`` splits the rows into consecutive windows of that length,
aligned to UTC midnight of 1970 (so daily windows are calendar days, UTC, whatever the run
time); without ``--window`` one window holds every row."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from mlcycle.core.errors import UserError

UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
MAX_WINDOWS = 1000
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass
class Window:
    start: datetime
    end: datetime  # exclusive
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.start.isoformat(timespec='minutes')} .. {self.end.isoformat(timespec='minutes')}"


def parse_window(text: str | None) -> timedelta | None:
    """``30m``, ``1h``, ``6h``, ``1d``, ``7d``, ``2w``; None or ``all``: one window."""
    if text is None or text == "all":
        return None
    match = re.fullmatch(r"(\d+)\s*([mhdw])", text.strip().lower())
    if not match or int(match.group(1)) == 0:
        raise UserError(f"--window '{text}' is not a duration like 30m, 1h, 6h, 1d, 7d or 2w")
    return timedelta(**{UNITS[match.group(2)]: int(match.group(1))})


def as_utc(moment: datetime) -> datetime:
    """Aware UTC; a naive time (SQLite returns them) is taken as UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def parse_time(text: str | None, option: str) -> datetime | None:
    """An ISO 8601 date or time (``2024-05-01``, ``2024-05-01T12:00``, ``...+02:00``); UTC when
    no offset is given."""
    if text is None:
        return None
    try:
        return as_utc(datetime.fromisoformat(text.strip().replace("Z", "+00:00")))
    except ValueError as exc:
        raise UserError(
            f"{option} '{text}' is not an ISO date or time like 2024-05-01T12:00"
        ) from exc


def split_windows(
    rows: list[dict[str, Any]],
    size: timedelta | None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Window]:
    """Consecutive windows from ``since`` (else the first row's window) to ``until`` (else past
    the last row), the rows in each; windows without rows are kept (they are reported)."""
    times = [as_utc(r["time"]) for r in rows]
    first = since or min(times)
    last = until or (max(times) + timedelta(microseconds=1))
    if size is None:
        return [Window(first, last, list(rows))]
    start = first if since else EPOCH + ((first - EPOCH) // size) * size
    count = -(-(last - start) // size)  # ceiling
    if count > MAX_WINDOWS:
        raise UserError(
            f"--window {size} makes {count} windows (at most {MAX_WINDOWS}); "
            "pass a longer --window or a shorter --since/--until"
        )
    windows = [
        Window(
            start + i * size, min(start + (i + 1) * size, last) if until else start + (i + 1) * size
        )
        for i in range(count)
    ]
    for row, moment in zip(rows, times, strict=True):
        position = (moment - start) // size
        if 0 <= position < count:
            windows[position].rows.append(row)
    return windows
