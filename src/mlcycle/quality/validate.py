"""``scripts/validate_data.py``: check every file of a config's data, write a report and a
quarantine list. The data is only read.

    python scripts/validate_data.py --config configs/image_folder.yaml --data.root PATH
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mlcycle.data.layout import absolute, data_root
from mlcycle.errors import ArgParser, UserError, main_guard
from mlcycle.quality.config import add_config_arguments, all_samples, build_data, parse_overrides
from mlcycle.quality.findings import FINDINGS, Item, Thresholds, check_all
from mlcycle.quality.quarantine import decide, write_quarantine
from mlcycle.quality.scan import scan
from mlcycle.quality.splits import assign_splits

REPORT = "data_report.json"
QUARANTINE = "quarantine.csv"


def parser() -> ArgParser:
    p = ArgParser(
        prog="validate_data.py",
        description="Find broken, duplicate, leaking, mislabeled and outlying images. "
        "Extra --data.KEY=VALUE arguments override the config's data section.",
    )
    add_config_arguments(p)
    t = Thresholds()
    p.add_argument("--out", default="reports/data", help="report folder (default: reports/data)")
    p.add_argument("--min-size", type=int, default=t.min_size, help="smallest width/height, px")
    p.add_argument(
        "--near-distance",
        type=int,
        default=t.near_distance,
        help="max differing bits of 64-bit dHashes for a near duplicate",
    )
    p.add_argument(
        "--near-correlation",
        type=float,
        default=t.near_correlation,
        help="min correlation of 16x16 gray thumbnails for a near duplicate",
    )
    p.add_argument("--min-per-class", type=int, default=t.min_per_class)
    p.add_argument(
        "--max-imbalance", type=float, default=t.max_imbalance, help="largest/smallest class"
    )
    p.add_argument("--outlier-z", type=float, default=t.outlier_z, help="robust z-score limit")
    p.add_argument(
        "--quarantine-outliers", action="store_true", help="also quarantine the outliers"
    )
    p.add_argument("--workers", type=int, default=None, help="scan threads (default: CPUs, <= 8)")
    return p


def check_out_folder(out: Path, paths: list[Path], option: str = "--out") -> None:
    """Reports and copies go next to the data, never into it."""
    root = data_root(paths)
    if absolute(out).is_relative_to(root) or out.resolve().is_relative_to(root.resolve()):
        raise UserError(f"{option} '{out}' is inside the data folder '{root}'; choose another")


def validate(
    configs: list[str],
    overrides: dict[str, Any],
    thresholds: Thresholds,
    out: Path,
    quarantine_outliers: bool = False,
    workers: int | None = None,
) -> dict[str, Any]:
    """Scan, check and write ``data_report.json`` and ``quarantine.csv``; return the report."""
    dm = build_data(configs, overrides)
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
    found = check_all(items, thresholds)
    reasons = decide(items, found, outliers=quarantine_outliers)
    report = {
        "configs": configs,
        "overrides": overrides,
        "source": dm.hparams.source,
        "files": len(items),
        "usable_files": sum(f.decoded for f in facts),
        "split_counts": dict(Counter(s or "unusable" for s in splits)),
        "class_counts": dict(sorted(Counter(it.label for it in items if it.facts.decoded).items())),
        "thresholds": asdict(thresholds),
        "counts": {name: len(found[name]) for name in FINDINGS},
        "quarantined": len(reasons),
        "quarantine_outliers": quarantine_outliers,
        "scan": {
            "seconds": round(seconds, 3),
            "images_per_second": round(len(items) / max(seconds, 1e-9), 1),
        },
        "findings": found,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / REPORT).write_text(json.dumps(report, indent=2, default=str) + "\n")
    write_quarantine(out / QUARANTINE, reasons)
    return report


def summary(report: dict[str, Any], out: Path) -> str:
    """A short table: each finding and how many times it was found."""
    width = max(len(n) for n in FINDINGS)
    lines = [
        f"{report['files']} files ({report['usable_files']} usable) in "
        f"{report['scan']['seconds']:.1f}s, {report['scan']['images_per_second']:.0f} images/s",
        f"{'finding':<{width}}  count",
    ]
    lines += [f"{name:<{width}}  {report['counts'][name]:>5}" for name in FINDINGS]
    lines.append(f"{report['quarantined']} file(s) quarantined: {out / QUARANTINE}")
    lines.append(f"report: {out / REPORT}")
    lines.append(f"train without them: --data.quarantine {out / QUARANTINE}")
    return "\n".join(lines)


@main_guard
def main(argv: list[str] | None = None) -> dict[str, Any]:
    args, extra = parser().parse_known_args(argv)
    thresholds = Thresholds(
        min_size=args.min_size,
        near_distance=args.near_distance,
        near_correlation=args.near_correlation,
        min_per_class=args.min_per_class,
        max_imbalance=args.max_imbalance,
        outlier_z=args.outlier_z,
    )
    if not 0 <= args.near_distance <= 64:
        raise UserError(f"--near-distance {args.near_distance} must be between 0 and 64")
    out = Path(args.out)
    report = validate(
        args.config, parse_overrides(extra), thresholds, out, args.quarantine_outliers, args.workers
    )
    print(summary(report, out))
    return report
