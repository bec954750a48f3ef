"""Evaluation by slice on disk: ``slices.json``, ``slices.csv`` and ``slices.png`` (the metric
per slice with its interval, flagged slices in red, too small ones in grey)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from mlcycle.core.record import write_json
from mlcycle.reports.figures import plt, save

CSV_COLUMNS = ("column", "value", "n", "metric", "low", "high", "status", "reasons")
COLOURS = {"ok": "tab:blue", "flagged": "tab:red", "too_small": "0.6"}


def write_slices(report: dict[str, Any], folder: Path, title: str) -> list[Path]:
    """The report's files in ``folder`` (made); nothing but the JSON when it was skipped."""
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "slices.json", report)
    if "skipped" in report:
        return [folder / "slices.json"]
    with open(folder / "slices.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for s in report["slices"]:
            row = {**s, "reasons": "; ".join(s["reasons"])}
            writer.writerow([_cell(row[c]) for c in CSV_COLUMNS])
    save(slices_figure(report, title), folder / "slices.png")
    return [folder / n for n in ("slices.json", "slices.csv", "slices.png")]


def _cell(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) else "" if value is None else value


def slices_figure(report: dict[str, Any], title: str):
    """One row per slice: the metric and its 95% interval; the whole and the minimum as lines."""
    slices = report["slices"]
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.28 * len(slices) + 1.2)))
    for i, s in enumerate(slices):
        if s["metric"] is None:
            continue
        colour = COLOURS[s["status"]]
        if s["low"] is not None:
            ax.plot([s["low"], s["high"]], [i, i], color=colour, lw=2)
        marker = "x" if s["status"] == "flagged" else "o"
        ax.plot(s["metric"], i, marker, color=colour, ms=6)
    whole = report["whole"]
    ax.axvline(whole["metric"], color="black", lw=1, label=f"whole {whole['metric']:.3f}")
    if report.get("minimum") is not None:
        ax.axvline(report["minimum"], color="tab:red", ls="--", lw=1, label="minimum")
    labels = [f"{s['column']}={s['value']} (n={s['n']})" for s in slices]
    ax.set_yticks(range(len(slices)), labels, fontsize=8)
    for tick, s in zip(ax.get_yticklabels(), slices, strict=True):
        tick.set_color(COLOURS[s["status"]] if s["status"] != "ok" else "black")
    ax.invert_yaxis()
    ax.set(xlabel=f"{report['metric']} (95% bootstrap interval)", title=title)
    ax.legend(loc="lower right", fontsize=8)
    return fig
