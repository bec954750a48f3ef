"""The monitor's time-series figures, one point (or bar) per window, as PNG bytes."""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

FLAG, OK = "#d62728", "#1f77b4"


def png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _ticks(ax: Any, windows: list[dict]) -> None:
    labels = [w["start"][:16].replace("T", " ") for w in windows]
    step = max(1, len(labels) // 12)
    ax.set_xticks(range(0, len(labels), step), labels[::step], rotation=30, ha="right")


def _found(window: dict, name: str, subject: str) -> dict | None:
    return next(
        (c for c in window["checks"] if c["check"] == name and c["subject"] == subject), None
    )


def _series(ax: Any, windows: list[dict], name: str, subject: str, key: str = "value") -> None:
    """One check's values over windows: flagged points red, not judged ones hollow."""
    for i, window in enumerate(windows):
        found = _found(window, name, subject)
        if found is None or found.get(key) is None:
            continue
        color = FLAG if found["flagged"] else OK
        face = color if found["judged"] else "none"
        ax.plot(i, found[key], "o", color=color, markerfacecolor=face)
    values = [(_found(w, name, subject) or {}).get(key) for w in windows]
    xs = [i for i, v in enumerate(values) if v is not None]
    ax.plot(xs, [values[i] for i in xs], "-", color=OK, alpha=0.4)


def psi_figure(windows: list[dict], statistics: list[str], threshold: float) -> Figure:
    """Per input statistic, PSI over the windows with the threshold."""
    cols = 3
    rows = -(-len(statistics) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, name in zip(axes.flat, statistics, strict=False):
        _series(ax, windows, "input_psi", name)
        ax.axhline(threshold, color=FLAG, linestyle="--", linewidth=1, label=f"{threshold}")
        ax.set(title=f"{name}: PSI (threshold dashed)", xlim=(-0.5, len(windows) - 0.5))
        ax.set_ylim(bottom=0)
        _ticks(ax, windows)
    for ax in list(axes.flat)[len(statistics) :]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def class_figure(windows: list[dict], reference: dict[str, int]) -> Figure:
    """Predicted-class shares per window (stacked bars), the val reference as the first bar."""
    classes = list(reference) + sorted(
        {c for w in windows for c in w["predicted_classes"]} - set(reference)
    )
    columns = [reference] + [w["predicted_classes"] for w in windows]
    shares = np.array(
        [[col.get(c, 0) / max(sum(col.values()), 1) for col in columns] for c in classes]
    )
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(columns) + 3), 3.6))
    bottom = np.zeros(len(columns))
    cmap = plt.get_cmap("tab20")
    for k, (name, row) in enumerate(zip(classes, shares, strict=True)):
        ax.bar(range(len(columns)), row, bottom=bottom, color=cmap(k % 20), label=name)
        bottom += row
    labels = ["reference (val)"] + [w["start"][:16].replace("T", " ") for w in windows]
    step = max(1, len(labels) // 12)
    ax.set_xticks(range(0, len(labels), step), labels[::step], rotation=30, ha="right")
    ax.set(ylabel="share of predictions", ylim=(0, 1), title="predicted classes")
    if len(classes) <= 20:
        ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
    fig.tight_layout()
    return fig


def confidence_figure(windows: list[dict], reference: float | None, shift: float) -> Figure:
    """Mean confidence per window, the reference's and the band of the shift threshold."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    _series(ax, windows, "confidence_mean", "confidence", key="mean")
    if reference is not None:
        ax.axhline(reference, color="gray", label="reference (val)")
        ax.axhspan(reference - shift, reference + shift, color="gray", alpha=0.12)
        ax.legend(fontsize=7, loc="lower left")
    ax.set(title="mean confidence", ylim=(0, 1.02), xlim=(-0.5, len(windows) - 0.5))
    _ticks(ax, windows)
    fig.tight_layout()
    return fig


def _estimates(ax: Any, windows: list[dict], name: str) -> None:
    """The estimate without labels of each window (hollow diamonds, its interval), beside the
    measured point."""
    label = "estimated (no labels)"
    for i, window in enumerate(windows):
        found = _found(window, name, "estimate")
        if found is None or found["value"] is None:
            continue
        color = FLAG if found["flagged"] else OK
        err = [[max(found["value"] - found["low"], 0)], [max(found["high"] - found["value"], 0)]]
        ax.errorbar(i + 0.15, found["value"], yerr=err, fmt="D", color=color, capsize=2,
                    markerfacecolor="none", label=label)  # fmt: skip
        label = None


def performance_figure(windows: list[dict], predictions: dict) -> Figure:
    """Accuracy and macro F1 from feedback with their 95 % intervals, the reference lines."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.4))
    for ax, name, low, high in (
        (axes[0], "accuracy", "low", "high"),
        (axes[1], "macro_f1", "low", "high"),
    ):
        for i, window in enumerate(windows):
            found = _found(window, name, "feedback")
            if found is None or found["value"] is None:
                continue
            color = FLAG if found["flagged"] else OK
            # a bootstrap percentile interval need not hold its point estimate
            err = [[max(found["value"] - found[low], 0)], [max(found[high] - found["value"], 0)]]
            ax.errorbar(i, found["value"], yerr=err, fmt="o", color=color, capsize=3)
        _estimates(ax, windows, name)
        reference = predictions.get(name)
        if reference is not None:
            ax.axhline(reference, color="gray", label="reference (val)")
        limits = [
            c["threshold"]
            for w in windows
            for c in w["checks"]
            if c["check"] == name and c["subject"] == "feedback"
        ]
        if limits:
            ax.axhline(limits[0], color=FLAG, linestyle="--", linewidth=1, label="threshold")
        ax.set(title=f"{name}: from feedback (dots), estimated (diamonds); 95 %", ylim=(0, 1.02))
        if ax.get_legend_handles_labels()[0]:  # a form without accuracy draws no lines
            ax.legend(fontsize=7, loc="lower left")
        ax.set_xlim(-0.5, len(windows) - 0.5)
        _ticks(ax, windows)
    fig.tight_layout()
    return fig
