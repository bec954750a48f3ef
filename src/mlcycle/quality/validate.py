"""``scripts/validate_data.py``: check every file of a config's data, write a report and a
quarantine list. The data is only read. The config is read as ``train.py`` reads it.

    python scripts/validate_data.py --config configs/image_folder.yaml --data.root PATH
    python scripts/validate_data.py --config configs/segment_quickstart.yaml

Classification data gets the image checks and the label checks; segmentation and detection data
the image checks and the checks of their masks or boxes (:mod:`mlcycle.quality.tasks`).
"""

from __future__ import annotations

import csv
import json
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mlcycle.commands.guard import main_guard
from mlcycle.core.errors import UserError
from mlcycle.data.layout import absolute, data_root
from mlcycle.quality.config import (
    all_samples,
    build_data,
    config_names,
    data_arguments,
    data_argv,
    data_parser,
    instantiate_data,
    parse,
)
from mlcycle.quality.findings import IMAGE_FINDINGS, Item, Thresholds, check_all, check_images
from mlcycle.quality.quarantine import decide, write_quarantine
from mlcycle.quality.scan import scan
from mlcycle.quality.splits import assign_splits
from mlcycle.quality.tables import source as table_source
from mlcycle.quality.tables import validate as table_validate
from mlcycle.quality.tasks import annotation_checks, dense_items, skipped_findings

REPORT = "data_report.json"
QUARANTINE = "quarantine.csv"
ANNOTATIONS = "annotations.csv"


def parser() -> Any:
    p = data_parser(
        "validate_data.py",
        "Find broken, duplicate, leaking, mislabeled and outlying images, and for segmentation "
        "and detection data empty masks, images without boxes, boxes outside the image and box "
        "outliers. Reads the config as train.py does (--config, --data.KEY=VALUE). A table (--table "
        "PATH --target COLUMN, or a TabularData config) gets the table checks (docs/tables.md).",
    )
    t = Thresholds()
    p.add_argument("--out", default="reports/data", help="report folder (default: reports/data)")
    p.add_argument("--min-size", type=int, default=t.min_size, help="smallest width/height, px")
    p.add_argument("--near-distance", type=int, default=t.near_distance, help="max differing bits of 64-bit dHashes for a near duplicate")  # fmt: skip
    p.add_argument("--near-correlation", type=float, default=t.near_correlation, help="min correlation of 16x16 gray thumbnails for a near duplicate")  # fmt: skip
    p.add_argument("--min-per-class", type=int, default=t.min_per_class, help="fewest images (boxes: objects) of a class")  # fmt: skip
    p.add_argument("--max-imbalance", type=float, default=t.max_imbalance, help="largest/smallest class")  # fmt: skip
    p.add_argument("--outlier-z", type=float, default=t.outlier_z, help="robust z-score limit")
    p.add_argument("--quarantine-outliers", action="store_true", help="also quarantine the outliers")  # fmt: skip
    p.add_argument("--workers", type=int | None, default=None, help="scan threads (default: CPUs, <= 8)")  # fmt: skip
    table_validate.add_options(p)
    return p


def check_out_folder(out: Path, paths: list[Path], option: str = "--out") -> None:
    """Reports and copies go next to the data, never into it."""
    root = data_root(paths)
    if absolute(out).is_relative_to(root) or out.resolve().is_relative_to(root.resolve()):
        raise UserError(f"{option} '{out}' is inside the data folder '{root}'; choose another")


def _classification(dm: Any, t: Thresholds, out: Path, workers: int | None) -> dict[str, Any]:
    found = all_samples(dm)
    samples = found.samples
    check_out_folder(out, [s.path for s in samples])
    start = time.perf_counter()
    facts = scan([s.path for s in samples], workers=workers)
    seconds = time.perf_counter() - start
    splits = assign_splits(dm, found, [f.sha256 if f.decoded else None for f in facts])
    items = [
        Item(str(s.path), s.label, split, f)
        for s, split, f in zip(samples, splits, facts, strict=True)
    ]
    counts = Counter(it.label for it in items if it.facts.decoded)
    return {
        "task": "classification",
        "items": items,
        "seconds": seconds,
        "class_counts": dict(sorted(counts.items())),
        "class_count_unit": "images",
        "findings": check_all(items, t),
    }


def _dense(dm: Any, checks: Any, t: Thresholds, out: Path, workers: int | None) -> dict[str, Any]:
    index = dm.index  # reads and checks every image with its mask or boxes, fixes the splits
    masks = [s.mask for s in index.samples if hasattr(s, "mask")]
    check_out_folder(out, [checks.image_path(s) for s in index.samples] + masks)
    start = time.perf_counter()
    positions = list(range(len(index.samples)))
    items, _ = dense_items(checks, positions, with_skipped=True, workers=workers)
    seconds = time.perf_counter() - start
    rows = checks.rows(positions, workers)
    found = {k: v for k, v in check_images(items, t).items() if k in IMAGE_FINDINGS}
    found.update(checks.check(rows, t))
    found["skipped"] = skipped_findings(dm)
    return {
        "task": checks.task,
        "items": items,
        "seconds": seconds,
        "class_counts": checks.class_counts(rows),
        "class_count_unit": checks.unit,
        "findings": found,
        "annotations": checks.summary(rows),
        "rows": [checks.csv_row(r) for r in rows],
    }


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
) -> dict[str, Any]:
    """Scan, check and write ``data_report.json``, ``quarantine.csv`` (and for masks or boxes
    ``annotations.csv``, one row per image); return the report."""
    checks = annotation_checks(dm)
    if checks is None:
        result = _classification(dm, thresholds, out, workers)
    else:
        result = _dense(dm, checks, thresholds, out, workers)
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
    if report["quarantine_option"]:
        lines.append(f"train without them: --data.quarantine {out / QUARANTINE}")
    else:
        lines.append("this data module has no data.quarantine option: fix or remove those files")
    return "\n".join(lines)


@main_guard
def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = parser()
    args = parse(p, argv)
    if not 0 <= args.near_distance <= 64:
        raise UserError(f"--near-distance {args.near_distance} must be between 0 and 64")
    thresholds = Thresholds(
        min_size=args.min_size,
        near_distance=args.near_distance,
        near_correlation=args.near_correlation,
        min_per_class=args.min_per_class,
        max_imbalance=args.max_imbalance,
        outlier_z=args.outlier_z,
    )
    given = data_arguments(argv if argv is not None else sys.argv[1:])
    if table_source.wanted(args):
        return table_validate.run(args)
    dm = instantiate_data(p, args)
    if table_source.is_table_module(dm):
        return table_validate.run(args, dm, given)
    out = Path(args.out)
    report = validate_data(
        dm, config_names(args), given, thresholds, out, args.quarantine_outliers, args.workers
    )
    print(summary(report, out))
    return report
