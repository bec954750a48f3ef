"""The leaderboard: one row per candidate, as CSV, Markdown and a self-contained HTML page
(``templates/selection/leaderboard.html``)."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from mlcycle.core.html import render  # noqa: E402

COLUMNS = (
    "rank",
    "candidate",
    "kind",  # candidate or baseline (a dummy model on the same folds, never ranked)
    "family",
    "start",
    "metric",
    "mean",
    "std",
    "folds",
    "fit_s",
    "latency_ms",
    "params",
    "size_mb",
    "gate",
    "budget",
    "error",
)


def ranked(rows: list[dict[str, Any]], mode: str) -> list[dict[str, Any]]:
    """Finished candidates by mean (best first), then the failed ones; ``rank`` filled in."""
    done = [r for r in rows if r.get("mean") is not None]
    failed = [r for r in rows if r.get("mean") is None]
    done.sort(key=lambda r: r["mean"], reverse=mode == "max")
    for i, row in enumerate(done, 1):
        row["rank"] = i
    for row in failed:
        row["rank"] = ""
    return done + failed


def _cell(key: str, value: Any) -> str:
    if value is None or value == "":
        return ""
    if key == "folds":
        return " ".join(f"{v:.4f}" if v is not None else "-" for v in value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4f}" if key in ("mean", "std", "latency_ms", "size_mb") else f"{value:.2f}"
    if isinstance(value, bool):
        return "pass" if value else "FAIL"
    return str(value)


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([_cell(k, row.get(k)) for k in COLUMNS])


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        cells = [_cell(k, row.get(k)).replace("|", "/") for k in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def console_table(rows: list[dict[str, Any]], top: int = 10) -> str:
    """The top rows, aligned, for the terminal."""
    keys = (
        "rank",
        "candidate",
        "family",
        "start",
        "mean",
        "std",
        "fit_s",
        "latency_ms",
        "gate",
        "budget",
    )
    table = [list(keys)] + [[_cell(k, r.get(k)) for k in keys] for r in rows[:top]]
    widths = [max(len(line[i]) for line in table) for i in range(len(keys))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in table
    )


def metric_figure(rows: list[dict[str, Any]], metric: str, minimum: float | None) -> Figure:
    """Mean +- std over folds per candidate, deep and classic in two colours, the gate as a line."""
    done = [r for r in rows if r.get("mean") is not None]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(done) + 1.2))
    colours = ["#4c72b0" if r["family"] == "deep" else "#dd8452" for r in done]
    ax.barh(
        [r["candidate"] for r in done],
        [r["mean"] for r in done],
        xerr=[r["std"] or 0 for r in done],
        color=colours,
    )
    ax.invert_yaxis()
    low = min((r["mean"] - (r["std"] or 0) for r in done), default=0)
    high = max((r["mean"] + (r["std"] or 0) for r in done), default=1)
    if 0 <= low and high <= 1:  # a score in [0, 1]: the bars' differences, zoomed in
        top = max((r["mean"] for r in done), default=1)
        ax.set_xlim(max(0.0, low - 0.05), min(1.0, top + 0.02))
    else:  # an error in the target's units (rmse): from 0
        ax.set_xlim(min(0.0, low), high * 1.05)
    if minimum is not None:
        ax.axvline(minimum, color="crimson", linestyle="--", label=f"objective {minimum:g}")
        ax.legend(loc="lower right")
    ax.set_xlabel(f"{metric}, mean over folds (bars: one std); blue deep, orange classic")
    fig.tight_layout()
    return fig


def write_html(
    path: Path,
    title: str,
    rows: list[dict[str, Any]],
    notes: list[str],
    figures: list[tuple[str, Path]],
    tables: list[tuple[str, list[str], list[list[Any]]]],
) -> None:
    """A page with everything inline (tables, figures as base64 PNG): mail it, open it anywhere."""
    page = render(
        "selection/leaderboard.html",
        title=title,
        notes=notes,
        columns=COLUMNS,
        rows=[[_cell(k, r.get(k)) for k in COLUMNS] for r in rows],
        tables=[
            (caption, columns, [[str(v) for v in row] for row in values])
            for caption, columns, values in tables
        ],  # fmt: skip
        figures=[(caption, figure) for caption, figure in figures if figure.is_file()],
    )
    path.write_text(page)
