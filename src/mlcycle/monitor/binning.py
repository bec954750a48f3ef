"""Distributions as the reference stores them: quantile bins with out-of-range bins, summaries.

A distribution's ``edges`` are the reference values' quantiles 0, 0.1, ..., 1 (repeats
dropped, at least two). Its bins are: below the reference minimum, the quantile bins
``[e0, e1), [e1, e2), ..., [e(k-1), ek]``, above the reference maximum. The reference's own
counts in the two outer bins are 0; production values outside the reference range land there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

BINS = 10  # quantile bins of a distribution
SAMPLE = 2000  # values kept for the KS test


def quantile_edges(values: np.ndarray, bins: int = BINS) -> list[float]:
    """The quantiles 0, 1/bins, ..., 1 of ``values``, repeats dropped, at least two edges."""
    # rounded as stored, so counts computed now and in the monitor use the same edges
    edges = np.unique(np.round(np.quantile(values, np.linspace(0, 1, bins + 1)), 6))
    if len(edges) == 1:  # a constant: one bin [v, v], out-of-range bins either side
        edges = np.repeat(edges, 2)
    return [float(v) for v in edges]


def bin_index(edges: Sequence[float], values: np.ndarray) -> np.ndarray:
    """The bin of each value: 0 below ``edges[0]``, ``len(edges)`` above ``edges[-1]``, else the
    quantile bin (the last one closed on the right, so the maximum is inside)."""
    edges_arr = np.asarray(edges, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    index = np.searchsorted(edges_arr[1:-1], values, side="right") + 1
    index[values < edges_arr[0]] = 0
    index[values > edges_arr[-1]] = len(edges_arr)
    return index


def bin_counts(edges: Sequence[float], values: np.ndarray) -> list[int]:
    """Counts of ``values`` in the ``len(edges) + 1`` bins of :func:`bin_index`."""
    found = np.bincount(bin_index(edges, values), minlength=len(edges) + 1)
    return [int(v) for v in found]


def sample(values: np.ndarray, size: int = SAMPLE, seed: int = 0) -> list[float]:
    """At most ``size`` of ``values``, drawn without replacement with a fixed seed."""
    if len(values) > size:
        values = np.random.default_rng(seed).choice(values, size, replace=False)
    # full precision: rounding would move confidences near 1 apart from the server's values
    return [float(v) for v in values]


def summarize(values: Sequence[float] | np.ndarray, bins: int = BINS) -> dict[str, Any]:
    """A distribution for ``reference.json``: count, mean, std, min, max, bins and a sample."""
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return {"count": 0}
    edges = quantile_edges(arr, bins)
    return {
        "count": int(arr.size),
        "mean": round(float(arr.mean()), 6),
        "std": round(float(arr.std()), 6),
        "min": float(arr.min()),
        "max": float(arr.max()),
        "edges": edges,
        "counts": bin_counts(edges, arr),
        "sample": sample(arr),
    }


def unit_histogram(values: np.ndarray, bins: int = BINS) -> dict[str, list]:
    """Equal-width bins on [0, 1] (confidences, shares), for figures."""
    counts, edges = np.histogram(np.clip(values, 0, 1), bins=bins, range=(0, 1))
    return {"edges": [round(float(e), 6) for e in edges], "counts": [int(c) for c in counts]}
