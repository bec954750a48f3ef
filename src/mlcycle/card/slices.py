"""The model card's evaluation by slice: what evaluate.py wrote in ``slices_<split>/`` (the
metric per slice with its interval, flagged slices and too small ones), val before test."""

from __future__ import annotations

import json
from typing import Any

from mlcycle.card.facts import Facts
from mlcycle.card.html import Interval, Section, Verdict, section

HEADER = ["split", "slice", "samples", "metric [95% interval]", "verdict"]


def _verdict(row: dict[str, Any]) -> Verdict:
    if row["status"] == "too_small":
        return Verdict(None, "too small to judge")
    if row["status"] == "flagged":
        return Verdict(False, "; ".join(row["reasons"]))
    return Verdict(True, "ok")


def _cell(row: dict[str, Any]) -> object:
    if row["low"] is None:
        return row["metric"]
    return Interval(row["metric"], row["low"], row["high"])


def slices(facts: Facts) -> Section:
    """A table of every slice of each evaluated split, and its figure."""
    rows, figures, notes = [], [], []
    for split in ("val", "test"):
        folder = facts.run.path / f"slices_{split}"
        report_file = folder / "slices.json"
        if not report_file.is_file():
            continue
        report = json.loads(report_file.read_text())
        if "skipped" in report:
            notes.append(f"{split}: {report['skipped']}")
            continue
        whole = report["whole"]
        notes.append(
            f"{split}: {report['metric']} {whole['metric']:.4f} on all {whole['n']}; a slice is "
            f"flagged {report['margin']:g} below the whole"
            + (f" or below {report['minimum']:g}" if report.get("minimum") is not None else "")
            + f"; under {report['min_samples']} samples it is too small to judge"
        )
        for row in report["slices"]:
            name = f"{row['column']}={row['value']}"
            rows.append([split, name, row["n"], _cell(row), _verdict(row)])
        if (folder / "slices.png").is_file():
            figures.append((folder / "slices.png", f"{report['metric']} by slice, {split} split"))
    return section(
        "slices", "Evaluation by slice", header=HEADER, rows=rows, notes=notes, figures=figures
    )
