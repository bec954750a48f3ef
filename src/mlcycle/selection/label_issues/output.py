"""label-issues' files: ``label_issues.csv`` (one line per item found: the columns naming it,
as a relabel file names it, the given and suggested labels, the score and the reasons) and
``label_issues.html``, a gallery of the first items (each shown as its kind of data shows
it: an image's thumbnail, a row's values)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from mlcycle.core.html import render
from mlcycle.selection.label_issues.inputs import Inputs
from mlcycle.selection.label_issues.rank import Issue

CSV_FILE = "label_issues.csv"
HTML_FILE = "label_issues.html"


def issue_rows(inputs: Inputs, issues: list[Issue]) -> list[dict[str, Any]]:
    """The CSV's lines, in the issues' order."""
    names, view, data = inputs.class_names, inputs.view, inputs.data
    rows = []
    for issue in issues:
        position = inputs.positions[issue.row]
        rows.append(
            {
                **view.ids(data, position),
                "given": names[int(inputs.given[issue.row])],
                "suggested": names[issue.suggested],
                "score": round(issue.score, 6),
                "reason": issue.reason,
            }
        )
    return rows


def write_csv(path: Path, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*columns, "given", "suggested", "score", "reason"])
        writer.writeheader()
        writer.writerows(rows)


def write_outputs(
    out: Path, inputs: Inputs, issues: list[Issue], counts: dict[str, int], gallery: int
) -> tuple[Path, Path]:
    """``label_issues.csv`` and ``label_issues.html`` (its first ``gallery`` items) in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    rows = issue_rows(inputs, issues)
    columns = inputs.view.key_columns
    write_csv(out / CSV_FILE, columns, rows)
    shown = [
        {**row, **inputs.view.show(inputs.data, inputs.positions[issue.row])}
        for row, issue in zip(rows[:gallery], issues[:gallery], strict=True)
    ]
    html = render(
        "label_issues/gallery.html",
        title="Label issues",
        source=inputs.source,
        items=len(inputs.positions),
        counts=counts,
        columns=columns,
        shown=shown,
        total=len(rows),
    )
    (out / HTML_FILE).write_text(html)
    return out / CSV_FILE, out / HTML_FILE
