#!/usr/bin/env python
"""Does the learning curve predict the next size? Checked on the bundled digits.

    python benchmarks/learning_curve_digits.py [--candidates svc,logistic,knn] [--folds 5]

For each candidate of configs/compare/digits.yaml named, ``mlcycle learning-curve`` trains it
at 10/25/50/100% of each fold's training images (a fresh temporary folder: nothing resumed).
The power law is then fitted on the 10/25/50% points only, with its bootstrap over folds, and
its prediction at 100% is set against the real run at 100%, side by side with two baselines
that need no curve: the 50% score carried forward, and a straight line in log(n) through the
25% and 50% scores. Prints, per candidate: predicted and measured val F1, whether the measured
value lies inside the predicted 95% interval, and each baseline's error; then the wall time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

import numpy as np

from mlcycle.commands.learning_curve import main
from mlcycle.selection.curve.fit import fit_curve
from mlcycle.selection.curve.report import from_error, matrix, to_error

SIZES = [0.1, 0.25, 0.5, 1.0]


def check(summary: dict) -> dict:
    """The fit on the sizes below 100% against the measured 100%, and the baselines."""
    mode, table = summary["mode"], summary["by_size"]
    n = np.array([r["n_train"] for r in table], float)
    errors = to_error(matrix(summary["points"], summary["sizes"], "val"), mode)
    curve = fit_curve(n[:-1], errors[:-1], seed=0)
    measured = table[-1]["val_mean"]
    means = [r["val_mean"] for r in table]
    slope = (means[2] - means[1]) / np.log(n[2] / n[1])
    found = {
        "n": int(n[-1]),
        "measured": measured,
        "measured_se": table[-1]["val_std"] / np.sqrt(table[-1]["folds"]),
        "carried": means[2],
        "log_line": means[2] + slope * np.log(n[3] / n[2]),
        "line": summary["line"],
    }
    if curve is not None:
        low, high = sorted(from_error(np.array(curve.interval_at(n[-1])), mode).tolist())
        found.update(predicted=from_error(curve.error_at(n[-1]), mode), low=low, high=high)
    return found


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/compare/digits.yaml")
    parser.add_argument("--candidates", default="svc,logistic,knn")
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    clock = time.perf_counter()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.candidates.split(","):
            argv = ["--config", args.config, "--candidate", name, "--folds", str(args.folds),
                    "--sizes", str(SIZES), "--out", str(Path(tmp) / name)]  # fmt: skip
            with redirect_stdout(StringIO()):
                results[name] = check(main(argv))
    wall = time.perf_counter() - clock
    print(f"digits, {args.folds} folds; power law fitted on 10/25/50%, checked at 100% (val f1)")
    header = f"{'candidate':<10}{'n':>6}{'measured':>10}{'predicted':>11}{'95% interval':>19}"
    print(f"{header}{'inside':>8}{'|err| fit':>11}{'|err| 50%':>11}{'|err| log':>11}")
    for name, r in results.items():
        if "predicted" not in r:
            print(f"{name:<10}{r['n']:>6}{r['measured']:>10.4f}   no fit (did not converge)")
            continue
        inside = r["low"] <= r["measured"] <= r["high"]
        span = f"[{r['low']:.4f}, {r['high']:.4f}]"
        print(
            f"{name:<10}{r['n']:>6}{r['measured']:>10.4f}{r['predicted']:>11.4f}{span:>19}"
            f"{'yes' if inside else 'no':>8}{abs(r['predicted'] - r['measured']):>11.4f}"
            f"{abs(r['carried'] - r['measured']):>11.4f}{abs(r['log_line'] - r['measured']):>11.4f}"
        )
    for name, r in results.items():
        print(f"{name}: measured 100% +- {r['measured_se']:.4f} (standard error over folds); "
              f"all four sizes: {r['line']}")  # fmt: skip
    print(f"wall time {wall:.0f} s for {len(results)} candidates x {len(SIZES)} sizes x {args.folds} folds")  # fmt: skip


if __name__ == "__main__":
    run()
