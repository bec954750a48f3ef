"""``validate_data.py`` on images: scan every file, run the checks of the images and those of
their labels or annotations (asked of the data kind's quality part), and write
``data_report.json``, ``quarantine.csv`` and, for masks or boxes, ``annotations.csv``. The data
is only read.

Classification data gets the label checks (:mod:`mlcycle.images.quality.labels`); segmentation and
detection data the checks of their masks or boxes (:mod:`mlcycle.quality.annotated`).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mlcycle.core.errors import UserError
from mlcycle.data.layout import absolute, data_root
from mlcycle.quality.config import build_data, data_argv
from mlcycle.quality.findings import Thresholds
from mlcycle.quality.kinds import quality_of
from mlcycle.quality.quarantine import decide, write_quarantine

REPORT = "data_report.json"
QUARANTINE = "quarantine.csv"
ANNOTATIONS = "annotations.csv"


def check_out_folder(out: Path, paths: list[Path], option: str = "--out") -> None:
    """Reports and copies go next to the data, never into it."""
    root = data_root(paths)
    if absolute(out).is_relative_to(root) or out.resolve().is_relative_to(root.resolve()):
        raise UserError(f"{option} '{out}' is inside the data folder '{root}'; choose another")


def validate(
    configs: Sequence[str],
    overrides: Mapping[str, Any] | Sequence[str] | None,
    thresholds: Thresholds,
    out: Path,
    quarantine_outliers: bool = False,
    workers: int | None = None,
) -> dict[str, Any]:
    """Build the data module of ``configs`` and ``overrides`` and run :func:`validate_data`."""
    dm = build_data(configs, overrides)
    return validate_data(dm, list(configs), data_argv(overrides), thresholds, out, quarantine_outliers, workers)  # fmt: skip


def validate_data(
    dm: Any,
    configs: list[str],
    overrides: list[str],
    thresholds: Thresholds,
    out: Path,
    quarantine_outliers: bool = False,
    workers: int | None = None,
    part: Any = None,
) -> dict[str, Any]:
    """Scan, check and write ``data_report.json``, ``quarantine.csv`` (and for masks or boxes
    ``annotations.csv``, one row per image); return the report. ``part`` is the quality part of
    ``dm``'s kind (an :class:`~mlcycle.quality.image_quality.ImageQuality`), asked if not given."""
    result = (part or quality_of(dm)).scan(dm, thresholds, out, workers)
    items, found, seconds = result["items"], result["findings"], result["seconds"]
    reasons = decide(items, {"label_conflicts": [], **found}, outliers=quarantine_outliers)
    report = {
        "configs": configs,
        "overrides": overrides,
        "task": result["task"],
        "data_class": f"{type(dm).__module__}.{type(dm).__name__}",
        "source": dm.hparams.source,
        "files": len(items),
        "usable_files": sum(it.facts.decoded for it in items),
        "split_counts": dict(Counter(it.split or "unusable" for it in items)),
        "class_counts": result["class_counts"],
        "class_count_unit": result["class_count_unit"],
        "thresholds": asdict(thresholds),
        "counts": {name: len(entries) for name, entries in found.items()},
        "quarantined": len(reasons),
        "quarantine_outliers": quarantine_outliers,
        "quarantine_option": "quarantine" in dm.hparams,
        "scan": {
            "seconds": round(seconds, 3),
            "images_per_second": round(len(items) / max(seconds, 1e-9), 1),
        },
        "annotations": result.get("annotations"),
        "findings": found,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / REPORT).write_text(json.dumps(report, indent=2, default=str) + "\n")
    write_quarantine(out / QUARANTINE, reasons)
    if result.get("rows") is not None:
        write_rows(out / ANNOTATIONS, result["rows"])
    return report


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["path"])
        writer.writeheader()
        writer.writerows(rows)


def summary(report: dict[str, Any], out: Path) -> str:
    """A short table: each finding and how many times it was found."""
    counts = report["counts"]
    width = max(len(n) for n in counts)
    lines = [
        f"{report['files']} files ({report['usable_files']} usable) in "
        f"{report['scan']['seconds']:.1f}s, {report['scan']['images_per_second']:.0f} images/s",
        f"{'finding':<{width}}  count",
    ]
    lines += [f"{name:<{width}}  {n:>5}" for name, n in counts.items()]
    lines.append(f"{report['quarantined']} file(s) quarantined: {out / QUARANTINE}")
    lines.append(f"report: {out / REPORT}")
    if report["annotations"] is not None:
        lines.append(f"per image: {out / ANNOTATIONS}")
    if not report["quarantined"]:
        return "\n".join(lines)  # nothing to leave out: no hint
    if report["quarantine_option"]:
        lines.append(f"train without them: --data.quarantine {out / QUARANTINE}")
    else:
        lines.append("this data module has no data.quarantine option: fix or remove those files")
    return "\n".join(lines)
