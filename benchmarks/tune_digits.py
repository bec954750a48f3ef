#!/usr/bin/env python
"""Wall time of an Optuna study on the digits (configs/tune/digits.yaml, median pruner on), and
what pruning saves: the share of trials pruned and the median time of a pruned trial against a
complete one.

    python benchmarks/tune_digits.py [--trials 20] [--out DIR] [--trainer.max_epochs=3 ...]

The study starts fresh in ``--out`` (default: a new temporary folder); other ``--key=value``
arguments go to every train.py run, as with tune.py.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from mlcycle.commands.tune import main as tune

CONFIG = "configs/tune/digits.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--out", help="a new study folder (default: a temporary one)")
    args, extra = parser.parse_known_args()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="tune_digits-")) / "study"
    if out.exists() and any(out.iterdir()):
        parser.error(f"--out {out} is not empty; the benchmark times a fresh study")
    start = time.perf_counter()
    record = tune(["--config", CONFIG, "--out", str(out), "--trials", str(args.trials), *extra])
    wall = time.perf_counter() - start
    counts, medians = record["counts"], record["median_duration_s"]
    done = counts["COMPLETE"] + counts["PRUNED"]
    print(f"\nbenchmark: {done} trials ({counts['FAIL']} failed) in {wall:.0f} s wall time; {out}")
    print(
        f"pruned: {counts['PRUNED']} of {done} trials ({100 * (record['pruned_share'] or 0):.0f}%)"
    )
    pruned, complete = medians["pruned"], medians["complete"]
    if pruned is not None and complete:
        saved = counts["PRUNED"] * (complete - pruned)
        print(
            f"median trial: pruned {pruned:.1f} s, complete {complete:.1f} s ({pruned / complete:.0%}); "
            f"pruning saved about {saved:.0f} s"
        )
    else:
        print(f"median trial: complete {complete} s; no trial pruned")
    print(
        f"best {record['metric']} {record['best']['value']:.4f} (trial {record['best']['number']})"
    )


if __name__ == "__main__":
    main()
