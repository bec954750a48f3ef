#!/usr/bin/env python
"""Seconds until ``scripts/train.py`` answers ``--help`` and config errors, and ``mlcycle --help``
and ``mlcycle train --help`` and a jsonargparse command's ``--help`` (evaluate, compare) answer,
against importing Lightning.

    python benchmarks/startup.py [--rounds 3]

Each case runs ``--rounds`` times as a fresh process (the best and the median are printed, with
the median's ratio to ``python -c "import lightning"``). ``warm``: the start-up cache was written
by an earlier call (the usual case); ``cold``: an empty cache folder per run, as on the first
call after an install, an upgrade or an edit of the mlcycle source (that call writes the cache).
Target: the warm cases and the missing config file answer in under 3 s, ``mlcycle --help`` and
``mlcycle evaluate --help`` in under 1 s (PASS/FAIL); a case that exits with another code than
expected FAILs. The cache lives in a temporary folder, never in the user's. Run on an otherwise
idle machine (the load average is printed)."""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 3.0
TRAIN = [sys.executable, "scripts/train.py"]
# the console script beside this Python (pip install -e .), else the same through python -m
SCRIPT = shutil.which("mlcycle", path=str(Path(sys.executable).parent))
MLCYCLE = [SCRIPT] if SCRIPT else [sys.executable, "-m", "mlcycle"]
# name, command, expected exit code, warm (the cache is written first), target in s (or None)
CASES = [
    ("import lightning (baseline)", [sys.executable, "-c", "import lightning"], 0, False, None),
    ("train.py --help, warm", [*TRAIN, "--help"], 0, True, TARGET_S),
    ("mlcycle --help", [*MLCYCLE, "--help"], 0, False, 1.0),
    ("mlcycle train --help, warm", [*MLCYCLE, "train", "--help"], 0, True, TARGET_S),
    ("mlcycle evaluate --help", [*MLCYCLE, "evaluate", "--help"], 0, False, 1.0),
    ("mlcycle compare --help", [*MLCYCLE, "compare", "--help"], 0, False, 1.0),
    (
        "unknown key, warm",
        [*TRAIN, "--config", "configs/quickstart.yaml", "--model.lrr=0.1"],
        2,
        True,
        TARGET_S,
    ),
    (
        "wrong value type, warm",
        [*TRAIN, "--config", "configs/quickstart.yaml", "--trainer.max_epochs=abc"],
        2,
        True,
        TARGET_S,
    ),
    ("missing config file", [*TRAIN, "--config", "configs/nothere.yaml"], 2, False, TARGET_S),
    ("train.py --help, cold", [*TRAIN, "--help"], 0, False, None),
    (
        "unknown key, cold",
        [*TRAIN, "--config", "configs/quickstart.yaml", "--model.lrr=0.1"],
        2,
        False,
        None,
    ),
]


def run(command: list[str], cache_dir: Path) -> tuple[float, int]:
    env = {**os.environ, "MLCYCLE_CACHE_DIR": str(cache_dir)}
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=600)
    return time.perf_counter() - start, proc.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}; {args.rounds} fresh processes per case")
    rows, failed = [], False
    with tempfile.TemporaryDirectory() as tmp:
        warm_dir = Path(tmp, "warm")
        run([*TRAIN, "--help"], warm_dir)  # writes the cached help and the key schema
        run(next(c for c in CASES if c[0] == "unknown key, warm")[1], warm_dir)
        for name, command, expected, warm, target in CASES:
            times, codes = [], set()
            for i in range(args.rounds):
                folder = warm_dir if warm else Path(tmp, f"cold-{name}-{i}")
                seconds, code = run(command, folder)
                times.append(seconds)
                codes.add(code)
            rows.append((name, min(times), statistics.median(times), codes, expected, target))
    baseline = rows[0][2]
    print(f"{'case':30} {'best s':>7} {'median s':>9} {'x import':>9}  result")
    for name, best, median, codes, expected, target in rows:
        if codes != {expected}:
            result, failed = f"FAIL (exit {sorted(codes)}, expected {expected})", True
        elif target is not None:
            ok = median < target
            result = f"{'PASS' if ok else 'FAIL'} (< {target:g} s)"
            failed |= not ok
        else:
            result = "-"
        print(f"{name:30} {best:7.2f} {median:9.2f} {median / baseline:9.2f}  {result}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
