"""One check's record, and the PSI and KS checks every kind of input shares: each record has
the check's name, what it is about (``subject``), its ``value``, ``threshold``, whether it was
``judged`` (enough rows) and whether it is ``flagged``, plus the numbers behind it."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlcycle.monitor import drift


def check(
    name: str,
    subject: str,
    value: Any,
    threshold: Any,
    judged: bool | None = None,
    flagged: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """One check's record; not judged (too few rows, no value) means never flagged."""
    judged = value is not None if judged is None else bool(judged and value is not None)
    return {
        "check": name,
        "subject": subject,
        "value": value,
        "threshold": threshold,
        "judged": judged,
        "flagged": bool(judged and flagged),
        **extra,
    }


def values(rows: list[dict[str, Any]], column: str) -> np.ndarray:
    """The finite numbers of one store column."""
    found = [r.get(column) for r in rows]
    arr = np.asarray([v for v in found if v is not None], dtype=np.float64)
    return arr[np.isfinite(arr)]


def psi_check(name: str, subject: str, ref_counts: list, counts: list, t: dict) -> dict:
    """PSI of ``counts`` against the reference's, flagged above the threshold and the noise."""
    n = int(sum(counts))
    value = drift.psi(ref_counts, counts)
    noise = drift.psi_noise(ref_counts, n, t["psi_noise_quantile"])
    limit = t["class_psi"] if name == "class_psi" else t["psi"]
    return check(
        name, subject, round(value, 6), limit, rows=n, noise=round(noise, 6),
        judged=n >= t["min_rows"], flagged=value > limit and value > noise,
    )  # fmt: skip


def ks_check(name: str, subject: str, found: np.ndarray, sample: list, t: dict) -> dict:
    """Two-sample KS of ``found`` against the reference's sample."""
    if len(found) == 0 or not sample:
        return check(name, subject, None, t["ks_p"], rows=len(found))
    statistic, p = drift.ks(found, sample)
    return check(
        name, subject, p, t["ks_p"], rows=len(found), statistic=round(statistic, 6),
        judged=len(found) >= max(t["ks_min_rows"], t["min_rows"]),
        flagged=p < t["ks_p"] and statistic >= t["ks_min_statistic"],
    )  # fmt: skip
