#!/usr/bin/env python
"""Wall time of ``compare.py`` on the digits against the time its fits take.

    python benchmarks/compare_digits.py [--config configs/compare/digits.yaml] [--folds 5] [--out DIR]

Runs the comparison in a fresh temporary folder (nothing resumed), then prints: wall time
(target on 2 cores: under 10 minutes for at least 4 deep and 5 classic candidates x 5 folds),
the sum of the candidate-folds' own wall times (train, predict, time) as the baseline, their
ratio (what orchestration, folds, analysis and figures add), and the leaderboard's top rows.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

from mlcycle.commands.compare import main


def fold_seconds(out: Path) -> float:
    return sum(
        json.loads(p.read_text()).get("wall_s", 0.0)
        for p in (out / "candidates").glob("*/fold*/selection_fold.json")
    )


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/compare/digits.yaml")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--out", help="keep the comparison here (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out else Path(tmp) / "compare"
        if out.exists():
            parser.error(f"--out {out} exists; the benchmark measures a fresh comparison")
        clock = time.perf_counter()
        with redirect_stdout(StringIO()):
            summary = main(["--config", args.config, "--folds", str(args.folds), "--out", str(out)])
        wall = time.perf_counter() - clock
        fits = fold_seconds(out)
        rows = summary["rows"]
        deep = sum(1 for r in rows if r["family"] == "deep")
        print(f"candidates: {deep} deep, {len(rows) - deep} classic, x {args.folds} folds")
        print(f"compare.py wall time       {wall:8.1f} s  (target < 600 s)")
        print(f"candidate-folds themselves {fits:8.1f} s")
        print(f"ratio wall / fits          {wall / max(fits, 1e-9):8.2f}")
        print(f"{'rank':<5}{'candidate':<20}{'family':<9}{'mean':>8}{'std':>8}{'ms/img':>9}  gate")
        for row in rows[:8]:
            mean = f"{row['mean']:.4f}" if row.get("mean") is not None else "failed"
            std = f"{row['std']:.4f}" if row.get("std") is not None else ""
            latency = f"{row['latency_ms']:.3f}" if row.get("latency_ms") is not None else ""
            print(
                f"{row['rank']!s:<5}{row['candidate']:<20}{row['family']:<9}{mean:>8}{std:>8}"
                f"{latency:>9}  {row.get('gate')}"
            )
        shortlist = summary.get("shortlist") or {}
        if shortlist:
            print(
                f"shortlist {', '.join(shortlist['members'])}: out-of-fold soft vote "
                f"{shortlist['ensemble_f1']:.4f} vs best single {shortlist['best_single_f1']:.4f}"
            )


if __name__ == "__main__":
    run()
