"""Evaluation by slice: the gate's metric for each value of a metadata column (and each
quantile bin of a numeric one), with the slice's size and a bootstrap interval.

A slice below the objective's ``slice_min`` (else its ``min``), or below the whole by more than
the margin, is flagged; a slice with fewer than ``min_samples`` items is "too small", never a
failure. Works on any per-item predictions: class probabilities ``(N, C)`` or values ``(N,)``.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.stats import bootstrap

from mlcycle.core.errors import UserError
from mlcycle.evaluators.slice_columns import slice_keys
from mlcycle.evaluators.slice_metrics import Metric, guesses, metric_for, supported

RELATIVE = ("rmse", "mse", "mae")  # metrics in the target's units: the margin is a share


@dataclass
class SliceOptions:
    """How slices are cut and judged.

    Args:
        columns: the columns to slice by; None: the kind of data's defaults.
        min_samples: a slice with fewer items is reported as too small, never flagged.
        margin: flag a slice below the whole by more than this (a share of the whole for
            rmse, mse and mae).
        bins: quantile bins of a numeric column with many values.
        resamples: bootstrap resamples per slice.
        seed: the bootstrap's seed.
    """

    columns: list[str] | None = None
    min_samples: int = 20
    margin: float = 0.05
    bins: int = 4
    resamples: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.min_samples < 1 or self.margin < 0 or self.bins < 1 or self.resamples < 1:
            raise UserError(
                "slices: min_samples, bins and resamples must be at least 1 and the margin at "
                f"least 0 (got {self.min_samples}, {self.bins}, {self.resamples}, {self.margin})"
            )


@dataclass
class Judge:
    """The metric, its direction and the lines a slice must not cross."""

    name: str
    direction: str  # "max": higher is better
    minimum: float | None  # the objective's slice_min (else min)
    margin: float

    def worse(self, value: float, limit: float) -> bool:
        return value < limit if self.direction == "max" else value > limit

    def whole_limit(self, whole: float) -> float:
        step = abs(whole) * self.margin if self.name in RELATIVE else self.margin
        return whole - step if self.direction == "max" else whole + step

    def reasons(self, value: float, whole: float) -> list[str]:
        found = []
        if self.minimum is not None and self.worse(value, self.minimum):
            found.append(f"{'below' if self.direction == 'max' else 'above'} {self.minimum:g}")
        if self.worse(value, self.whole_limit(whole)):
            side = "below" if self.direction == "max" else "above"
            found.append(f"{side} the whole ({whole:.4f}) by more than {self.margin:g}")
        return found


@dataclass
class Slice:
    column: str
    value: str
    n: int
    metric: float | None
    low: float | None = None
    high: float | None = None
    status: str = "ok"  # ok, flagged or too_small
    reasons: list[str] = field(default_factory=list)


def interval(
    metric: Metric, truth: np.ndarray, guess: np.ndarray, labels: list[int], options: SliceOptions
) -> tuple[float, float]:
    """A 95% percentile bootstrap interval of ``metric`` (scipy.stats.bootstrap, seeded),
    widened to hold the point estimate when a skewed resample distribution leaves it out."""
    point = float(metric(truth, guess, labels))
    if len(truth) < 2:
        return point, point
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a slice all right (or all wrong) is degenerate: fine
        found = bootstrap(
            (truth, guess),
            lambda t, g, axis=-1: metric(t, g, labels, axis),
            paired=True,
            vectorized=True,
            n_resamples=options.resamples,
            batch=200,
            method="percentile",
            rng=np.random.default_rng(options.seed),
        ).confidence_interval
    low, high = (
        float(np.nan_to_num(found.low, nan=point)),
        float(np.nan_to_num(found.high, nan=point)),
    )
    return min(low, point), max(high, point)


@dataclass
class Scorer:
    """Scores subsets of one set of predictions with the judge's metric."""

    metric: Metric
    truth: np.ndarray
    guess: np.ndarray
    classes: bool  # class indices (macro averages over the subset's classes) or values
    options: SliceOptions

    def value(self, rows: np.ndarray) -> float:
        truth = self.truth[rows]
        labels = sorted(set(truth.tolist())) if self.classes else []
        return float(self.metric(truth, self.guess[rows], labels))

    def scored(self, rows: np.ndarray) -> tuple[float, float, float]:
        """The value on ``rows`` and its interval."""
        truth = self.truth[rows]
        labels = sorted(set(truth.tolist())) if self.classes else []
        low, high = interval(self.metric, truth, self.guess[rows], labels, self.options)
        return self.value(rows), low, high

    def judged(self, column: str, key: str, rows: np.ndarray, judge: Judge, whole: float) -> Slice:
        if len(rows) < self.options.min_samples:
            value = self.value(rows) if len(rows) else None
            return Slice(column, key, int(len(rows)), value, status="too_small")
        value, low, high = self.scored(rows)
        reasons = judge.reasons(value, whole)
        return Slice(
            column, key, int(len(rows)), value, low, high, "flagged" if reasons else "ok", reasons
        )


def score_slices(
    columns: dict[str, list[Any]],
    scores: np.ndarray,
    target: np.ndarray,
    judge: Judge,
    options: SliceOptions,
) -> dict[str, Any]:
    """Every column's slices scored and judged against the whole; a JSON-ready report."""
    metric = metric_for(judge.name, scores)
    if metric is None:
        return {"metric": judge.name, "skipped": unsupported(judge.name, scores)}
    if np.asarray(target).ndim != 1:  # several labels per item (multi-label): no one truth
        return {"metric": judge.name, "skipped": "no slices: the targets are not one per item"}
    classes = scores.ndim == 2
    truth = target.astype(int) if classes else target.astype(float)
    scorer = Scorer(metric, truth, guesses(scores), classes, options)
    whole, low, high = scorer.scored(np.arange(len(truth)))
    found = []
    for column, values in columns.items():
        keys = np.array(slice_keys(values, options.bins)[0], dtype=object)
        for key in sorted(set(keys.tolist()), key=_order):
            found.append(scorer.judged(column, key, np.flatnonzero(keys == key), judge, whole))
    return {
        "metric": judge.name,
        "mode": judge.direction,
        "minimum": judge.minimum,
        "margin": judge.margin,
        "min_samples": options.min_samples,
        "whole": {"n": int(len(truth)), "metric": whole, "low": low, "high": high},
        "columns": list(columns),
        "slices": [asdict(s) for s in found],
    }


def _order(value: str) -> tuple:
    """Bins by their lower edge, then the other values by name."""
    if value.startswith("[") and "," in value:
        return (0, float(value[1:].split(",")[0]), value)
    return (1, 0.0, value)


def unsupported(name: str, scores: np.ndarray) -> str:
    return (
        f"no slices: {name} is not computed per slice (slices score {', '.join(supported(scores))})"
    )


def flag_lines(report: dict[str, Any], unit: str = "items") -> list[str]:
    """One line per flagged slice (and one for the too small ones), for the console."""
    if "skipped" in report:
        return [f"  {report['skipped']}"]
    name = report["metric"]
    lines = []
    for s in report["slices"]:
        if s["status"] == "flagged":
            lines.append(
                f"  slice flagged: {s['column']}={s['value']}: {name} {s['metric']:.4f} "
                f"[{s['low']:.4f}, {s['high']:.4f}] on {s['n']} {unit}; {'; '.join(s['reasons'])}"
            )
    small = [s for s in report["slices"] if s["status"] == "too_small"]
    if small:
        lines.append(
            f"  {len(small)} slice(s) too small to judge (under {report['min_samples']} "
            f"{unit}): " + ", ".join(f"{s['column']}={s['value']} ({s['n']})" for s in small[:6])
        )
    return lines


def summary_line(report: dict[str, Any], where: str) -> str:
    """``slices: 12 over brightness, contrast; 1 flagged; 0 too small; <where>``."""
    if "skipped" in report:
        return f"  slices: {report['skipped']}"
    slices = report["slices"]
    flagged = sum(s["status"] == "flagged" for s in slices)
    small = sum(s["status"] == "too_small" for s in slices)
    return (
        f"  slices: {len(slices)} over {', '.join(report['columns']) or 'no column'}; "
        f"{flagged} flagged, {small} too small; {where}"
    )
