"""Inputs as named columns (``model.json`` ``input.kind: table``): each column's reference
distribution, and the checks of a window's values against it.

Values are read as ``predict.py`` reads a CSV cell (``mlcycle.edge.rows.read_cell``, by the
column's kind), so the reference (made from the training rows written as CSV) and the store's
``inputs`` (a JSON object ``{column: value}`` a row) are read alike. Numbers and dates (days
since 1970) are compared by PSI on the reference's quantile bins and KS against its sample;
categories, booleans and text by PSI and chi-square on the category counts, and by the share
of categories the reference never saw. Every column also by its missing rate (a value that
does not read as its kind counts as missing). The columns are checked in the order of their
importance (``reference.json``'s ``columns``), then by the size of their drift.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from typing import Any

import numpy as np
from scipy import stats

from mlcycle.edge.rows import number_text, read_cell
from mlcycle.monitor import drift
from mlcycle.monitor.binning import bin_counts, summarize
from mlcycle.monitor.record import check, ks_check, psi_check

NUMBERS = ("numeric", "datetime")  # compared as numbers; every other kind as categories
MAX_CATEGORIES = 200  # categories kept a column; the rest are counted together
EPOCH = datetime(1970, 1, 1)


def cell_text(value: Any) -> str:
    """A JSON value as a CSV cell: null is empty, booleans are true/false."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return number_text(value) if np.isfinite(value) else ""
    return str(value)


def read_value(text: str, kind: str) -> tuple[Any, bool]:
    """``(value, readable)``: a number for numbers and dates, a category's text otherwise;
    ``None`` when missing."""
    value, problem = read_cell(text, kind)
    if problem is not None:
        return None, False
    if value is None or value == "":
        return None, True
    if kind == "datetime":
        return (value - EPOCH).total_seconds() / 86400.0, True
    if kind == "boolean":
        return ("true" if value else "false"), True
    return value, True


def read_column(texts: list[str], kind: str) -> tuple[list[Any], int, int]:
    """The values found, the missing count and, of those, the unreadable count."""
    found, missing, unreadable = [], 0, 0
    for text in texts:
        value, readable = read_value(text, kind)
        if value is None:
            missing += 1
            unreadable += not readable
        else:
            found.append(value)
    return found, missing, unreadable


def column_entry(texts: list[str], kind: str) -> dict[str, Any]:
    """One column of one split for ``reference.json``."""
    found, missing, unreadable = read_column(texts, kind)
    entry: dict[str, Any] = {
        "kind": kind,
        "rows": len(texts),
        "missing": missing,
        "missing_rate": round(missing / len(texts), 6) if texts else 0.0,
        "unreadable": unreadable,
    }
    if kind in NUMBERS:
        entry["distribution"] = summarize(found)
        return entry
    counts = Counter(found).most_common()
    entry["levels"] = len(counts)
    entry["frequencies"] = dict(counts[:MAX_CATEGORIES])
    entry["other"] = sum(n for _, n in counts[MAX_CATEGORIES:])  # beyond MAX_CATEGORIES
    return entry


def split_columns(header: list[str], rows: list[list[str]], kinds: dict[str, str]) -> dict:
    """Every column in ``kinds`` of a split read from CSV text (``edge.rows.read_rows``)."""
    where = {name: i for i, name in enumerate(header)}
    return {
        name: column_entry([r[where[name]] if where[name] < len(r) else "" for r in rows], kind)
        for name, kind in kinds.items()
    }


def store_texts(rows: list[dict[str, Any]], names: list[str]) -> dict[str, list[str]]:
    """Each column's values in the store's ``inputs`` (JSON) as CSV text; rows without inputs
    are left out, a column absent from a row's inputs is missing there."""
    texts: dict[str, list[str]] = {name: [] for name in names}
    for row in rows:
        found = row.get("inputs")
        if isinstance(found, str):
            try:
                found = json.loads(found)
            except ValueError:
                found = None
        if not isinstance(found, dict):
            continue
        for name in names:
            texts[name].append(cell_text(found.get(name)))
    return texts


def missing_check(name: str, texts: list[str], missing: int, ref: dict, t: dict) -> dict:
    """The missing rate against the reference's (binomial test, smoothed reference rate)."""
    n = len(texts)
    if n == 0:
        return check("input_missing", name, None, t["missing_shift"], rows=0)
    rate, ref_rate = missing / n, ref["missing_rate"]
    p = stats.binomtest(missing, n, (ref["missing"] + 0.5) / (ref["rows"] + 1)).pvalue
    return check(
        "input_missing", name, round(rate - ref_rate, 6), t["missing_shift"], rows=n,
        rate=round(rate, 6), reference=ref_rate, p=float(p), judged=n >= t["min_rows"],
        flagged=abs(rate - ref_rate) > t["missing_shift"] and p < t["chi2_p"],
    )  # fmt: skip


def number_checks(name: str, found: list[Any], ref: dict, t: dict) -> list[dict]:
    """PSI on the reference's quantile bins and KS against its sample."""
    dist = ref["distribution"]
    if not dist.get("count"):
        return []
    seen = np.asarray(found, dtype=np.float64)
    seen = seen[np.isfinite(seen)]
    counts = bin_counts(dist["edges"], seen)
    return [
        psi_check("input_psi", name, dist["counts"], counts, t),
        ks_check("input_ks", name, seen, dist["sample"], t),
    ]


def category_checks(name: str, found: list[Any], ref: dict, t: dict) -> list[dict]:
    """PSI over the reference's categories (plus one bin for the rest), chi-square of the
    counts, and the share of categories the reference never saw."""
    known = ref["frequencies"]
    counts = Counter(str(v) for v in found)
    rest = sum(n for v, n in counts.items() if v not in known)
    ref_bins = [*known.values(), ref["other"]]
    bins = [*(counts.get(v, 0) for v in known), rest]
    chi2 = drift.class_chi2(counts, known)
    n = len(found)
    checks = [
        psi_check("input_psi", name, ref_bins, bins, t),
        check(
            "input_chi2", name, chi2["p"], t["chi2_p"], rows=n, cells=chi2["cells"],
            effect_w=chi2["w"], judged=chi2["p"] is not None and n >= t["min_rows"],
            flagged=(chi2["p"] or 1) < t["chi2_p"] and (chi2["w"] or 0) >= t["chi2_min_effect"],
        ),
    ]  # fmt: skip
    if ref["other"] == 0:  # the reference holds every category: anything else is unseen
        unseen = sorted((v for v in counts if v not in known), key=lambda v: -counts[v])
        share = rest / n if n else None
        checks.append(
            check(
                "input_unseen", name, None if share is None else round(share, 6),
                t["unseen_share"], rows=n, unseen=unseen[:5], judged=n >= t["min_rows"],
                flagged=share is not None and share > t["unseen_share"],
            )
        )  # fmt: skip
    return checks


def _size(checks: list[dict]) -> float:
    """A column's drift size: its largest PSI."""
    return max((c["value"] or 0.0 for c in checks if c["check"] == "input_psi"), default=0.0)


def column_checks(rows: list[dict], reference: dict, t: dict) -> list[dict]:
    """Every column's checks, the most important column first (then the largest drift);
    each check carries its column's ``importance`` (None when the reference has none)."""
    columns = reference["splits"][t["reference_split"]]["columns"]
    importance = {c["name"]: c.get("importance") for c in reference.get("columns") or []}
    texts = store_texts(rows, list(columns))
    groups = []
    for name, ref in columns.items():
        found, missing, _ = read_column(texts[name], ref["kind"])
        checked = number_checks if ref["kind"] in NUMBERS else category_checks
        group = [missing_check(name, texts[name], missing, ref, t), *checked(name, found, ref, t)]
        for c in group:
            c["importance"] = importance.get(name)
        groups.append(group)
    groups.sort(key=lambda g: (-(g[0]["importance"] or 0.0), -_size(g)))
    return [c for group in groups for c in group]
