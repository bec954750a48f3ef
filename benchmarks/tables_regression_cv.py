"""Regression candidates and ensembles, judged by out-of-fold RMSE (no time limit).

    python benchmarks/tables_regression_cv.py                 # diabetes and messy spend
    python benchmarks/tables_regression_cv.py --tables diabetes --out /tmp/cv

The same train rows as ``benchmarks/tables_vs_autogluon.py`` (its 80/20 split, seed 0), one
``compare.py`` per table (3 folds, fixed candidates: the ``medium`` preset before and after
the change, and ``lightgbm_valstop``, LightGBM early-stopping on the fold's scored rows as it
did before). Printed per table and candidate set: the best single candidate's out-of-fold
RMSE (over all rows), the shortlist's mean (compare's greedy choice of members), and the
shortlist's greedy weights and ridge stack, each cross-fitted over the comparison's folds.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

ONEHOT = ["--data.pipeline.categorical={encode: onehot}"]
CANDIDATES = {
    "linear": {"estimator": "linear", "args": ONEHOT},
    "hist_gradient_boosting": {"estimator": "hist_gradient_boosting", "params": {"max_iter": 300}},
    "lightgbm": {"estimator": "lightgbm"},
    "lightgbm_valstop": {"estimator": "lightgbm",
                         "args": ["--model.init_args.early_stopping_fraction=null"]},
    "catboost": {"estimator": "catboost"},
    "random_forest": {"estimator": "random_forest", "params": {"n_estimators": 300}},
    "mlp": {},
}  # fmt: skip
SETS = {
    "medium before": ["linear", "hist_gradient_boosting", "lightgbm_valstop", "random_forest",
                      "mlp"],
    "medium before, honest stopping": ["linear", "hist_gradient_boosting", "lightgbm",
                                       "random_forest", "mlp"],
    "medium now": ["linear", "lightgbm", "catboost", "random_forest", "mlp"],
}  # fmt: skip


def compare_table(table: str, root: Path) -> Path:
    import tables_vs_autogluon as side

    folder = root / table
    train, _, _ = side.split_table(table, folder, 0)
    spec = yaml.safe_load(side.comparison_yaml(table, train, 3, 0, folder).read_text())
    spec["candidates"] = [{"name": n, **c} for n, c in CANDIDATES.items()]
    (folder / "cv.yaml").write_text(yaml.safe_dump(spec))
    with open(folder / "log.txt", "w") as log:
        subprocess.run([sys.executable, "scripts/compare.py", "--config", str(folder / "cv.yaml"),
                        "--out", str(folder / "compare")], cwd=ROOT, check=True, stdout=log,
                       stderr=subprocess.STDOUT)  # fmt: skip
    return folder / "compare"


def scores(compare: Path, names: list[str]) -> dict[str, str]:
    from mlcycle.selection.compare.shortlist import value_shortlist
    from mlcycle.selection.ensemble.methods import score_value_methods
    from mlcycle.selection.scores import regression_scores

    found = {n: np.load(compare / "candidates" / n / "oof.npz") for n in names}
    target, folds = found[names[0]]["target"].astype(float), found[names[0]]["folds"]
    values = {n: found[n]["pred"].astype(float) for n in names}
    single = {n: regression_scores(v, target)["rmse"] for n, v in values.items()}
    best = min(single, key=single.__getitem__)
    short = value_shortlist(values, target)
    members = np.stack([values[n] for n in short["members"]])
    fitted = {o.method: o.scores for o in score_value_methods(["weighted", "stacking"], members,
                                                              target, folds)}  # fmt: skip
    return {
        "best single": f"{single[best]:.2f} {best}",
        "shortlist mean": f"{short['ensemble_rmse']:.2f} ({', '.join(short['members'])})",
        "greedy weights": f"{fitted['weighted']['rmse']:.2f} (R2 {fitted['weighted']['r2']:.3f})",
        "ridge stack": f"{fitted['stacking']['rmse']:.2f}",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", nargs="+", default=["diabetes", "messy_spend"],
                        choices=["diabetes", "messy_spend"])  # fmt: skip
    parser.add_argument("--out", default=None, help="work folder (default: a temp folder)")
    opts = parser.parse_args(argv)
    root = Path(opts.out or tempfile.mkdtemp(prefix="tables_regression_cv_"))
    print("| table | candidates | best single | shortlist mean | greedy weights | ridge stack |")
    print("| --- | --- | --- | --- | --- | --- |")
    for table in opts.tables:
        compare = compare_table(table, root)
        for label, names in SETS.items():
            row = scores(compare, names)
            print(f"| {table} | {label} | " + " | ".join(row.values()) + " |", flush=True)
    print("out-of-fold RMSE over all train rows, 3 folds; the fitted ones cross-fitted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
