"""Tables: mlcycle against AutoGluon side by side, the same rows and the same wall-time budget.

    python benchmarks/tables_vs_autogluon.py --autogluon-python /work/agvenv/bin/python
    python benchmarks/tables_vs_autogluon.py --tables wine diabetes --budget 60 --preset best
    python benchmarks/tables_vs_autogluon.py --autogluon-python PY --seeds 3 \
        --autogluon-presets medium_quality      # the mean over 3 splits of each table
    python benchmarks/tables_vs_autogluon.py            # mlcycle's side alone (says so)

For each bundled table (breast_cancer, wine, diabetes, and messy with both of its targets,
churn and spend; the other target is dropped from the columns) the rows are split once, 80/20
(stratified for classification, ``--seed``; ``--seeds K``: K splits, seeds SEED to SEED+K-1,
each side's figures averaged over them, each split kept in results.json), into
``<out>/<table>/train.csv`` and ``holdout.csv``. Both sides see only train.csv, and each gets ``--budget`` seconds:

- mlcycle: ``compare.py --preset P --time_limit T --export`` on train.csv (``--folds`` folds),
  with T the budget less 3 s left to predict.py: the limit holds the whole command, the
  candidate-folds, the report, and the export of its one model (the shortlist's ensemble when
  it beats the best single model out of fold, else the best candidate's fold runs averaged:
  one ONNX file). Then ``predict.py --csv`` runs that file on the held-out rows;
- AutoGluon's ``TabularPredictor`` with ``medium_quality`` and ``best_quality``, the same
  ``time_limit``, run by ``--autogluon-python`` (a separate venv: AutoGluon is a benchmark-only
  dependency, never mlcycle's) on the same train.csv, predicting holdout.csv.

The held-out metric is computed here from each side's predictions: macro F1 for
classification, R2 and RMSE for regression. Times are wall seconds of everything each side
ran (mlcycle: compare with its export, then predict; AutoGluon: fit, predict). Sizes: mlcycle's one
model.onnx against AutoGluon's saved predictor folder. Results: ``<out>/results.json`` and a
Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
PREDICT_S = 3.0  # of the budget left to predict.py (measured: 1.5-2.5 s for these tables)
sys.path.insert(0, str(ROOT / "src"))

# name: (built-in table, target, other target to drop, task, mlcycle's config)
TABLES: dict[str, tuple[str, str, str | None, str, str]] = {
    "breast_cancer": ("breast_cancer", "target", None, "classification",
                      "configs/tables/breast_cancer.yaml"),
    "wine": ("wine", "target", None, "classification", "configs/tables/csv_template.yaml"),
    "diabetes": ("diabetes", "target", None, "regression", "configs/tables/csv_template.yaml"),
    "messy_churn": ("messy", "churn", "spend", "classification", "configs/tables/messy.yaml"),
    "messy_spend": ("messy", "spend", "churn", "regression", "configs/tables/messy.yaml"),
}  # fmt: skip

# Run by the AutoGluon venv's python: fit on train.csv, predict holdout.csv.
AUTOGLUON_SIDE = r"""
import json, sys, time
import pandas as pd
from autogluon.tabular import TabularPredictor, __version__
train, holdout, label, task, preset, limit, path, out = sys.argv[1:9]
start = time.perf_counter()
predictor = TabularPredictor(
    label=label, problem_type=None if task == "classification" else "regression",
    eval_metric="f1_macro" if task == "classification" else "root_mean_squared_error",
    path=path, verbosity=1,
)
predictor.fit(pd.read_csv(train), presets=preset, time_limit=float(limit))
fit_s = time.perf_counter() - start
predictions = predictor.predict(pd.read_csv(holdout))
pd.DataFrame({"prediction": predictions}).to_csv(out, index=False)
board = predictor.leaderboard(silent=True)
json.dump({"version": __version__, "fit_s": fit_s, "total_s": time.perf_counter() - start,
           "best_model": predictor.model_best, "models": len(board)}, open(out + ".json", "w"))
"""


def split_table(name: str, folder: Path, seed: int) -> tuple[Path, Path, pd.Series]:
    """train.csv and holdout.csv (features only) in ``folder``; returns the held-out targets."""
    from sklearn.model_selection import train_test_split

    from mlcycle.tables.builtin import BUILTIN_TABLES

    table, target, other, task, _ = TABLES[name]
    frame = BUILTIN_TABLES.get(table)()
    if other:
        frame = frame.drop(columns=[other])
    stratify = frame[target] if task == "classification" else None
    train, holdout = train_test_split(frame, test_size=0.2, random_state=seed, stratify=stratify)
    folder.mkdir(parents=True, exist_ok=True)
    train.to_csv(folder / "train.csv", index=False)
    holdout.drop(columns=[target]).to_csv(folder / "holdout.csv", index=False)
    return folder / "train.csv", folder / "holdout.csv", holdout[target].reset_index(drop=True)


def scores(task: str, truth: pd.Series, predicted: pd.Series) -> dict[str, float]:
    from sklearn.metrics import f1_score, mean_squared_error, r2_score

    if task == "classification":
        return {"f1": float(f1_score(truth.astype(str), predicted.astype(str), average="macro"))}
    truth, predicted = truth.astype(float), predicted.astype(float)
    return {
        "r2": float(r2_score(truth, predicted)),
        "rmse": float(np.sqrt(mean_squared_error(truth, predicted))),
    }


def run(command: list[str], log: Path) -> None:
    """Run a command (output to ``log``); a failure stops the benchmark with the log's tail."""
    with open(log, "a") as handle:
        handle.write("$ " + " ".join(command) + "\n")
        handle.flush()
        done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT)
    if done.returncode:
        tail = log.read_text().splitlines()[-15:]
        raise RuntimeError(f"{command[1]} failed ({done.returncode}):\n" + "\n".join(tail))


def comparison_yaml(name: str, train: Path, folds: int, seed: int, folder: Path) -> Path:
    _, target, _, task, config = TABLES[name]
    args = [
        "--data.source=csv",
        f"--data.path={train}",
        f"--data.target={target}",
        f"--data.task={task}",
        "--data.test_fraction=0",
    ]
    spec: dict[str, Any] = {
        "train": [config],
        "args": args,
        "folds": folds,
        "fold_seed": seed,
        "candidates": [],
        "objective": {"metric": "val/f1" if task == "classification" else "val/rmse"},
    }
    path = folder / "comparison.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def mlcycle_side(name: str, train: Path, holdout: Path, opts: argparse.Namespace) -> dict:
    """compare.py --export (the whole budget but predict's share), then predict.py; the
    predictions and each step's time."""
    folder = train.parent / "mlcycle"
    folder.mkdir(exist_ok=True)
    log, py = folder / "log.txt", sys.executable
    start = time.perf_counter()
    spec = comparison_yaml(name, train, opts.folds, opts.seed, folder)
    limit = opts.budget - PREDICT_S
    run([py, "scripts/compare.py", "--config", str(spec), "--preset", opts.preset,
         "--time_limit", f"{limit:g}", "--export", "--out", str(folder / "compare")], log)  # fmt: skip
    compare_s = time.perf_counter() - start
    final = json.loads((folder / "compare" / "final" / "final.json").read_text())
    onnx = Path(final["model"])
    out = folder / "predictions.csv"
    run([py, "scripts/predict.py", str(onnx), "--csv", str(holdout), "--out", str(out)], log)
    predicted = pd.read_csv(out)
    column = "class" if TABLES[name][3] == "classification" else "prediction"
    return {
        "best": final["picked"].split(" (")[0],
        "predictions": predicted[column],
        "size_bytes": onnx.stat().st_size,
        "compare_s": compare_s,
        "export_s": final["seconds"],
        "total_s": time.perf_counter() - start,
    }


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def autogluon_side(name: str, train: Path, holdout: Path, preset: str, opts) -> dict:
    """AutoGluon's TabularPredictor in its own venv: the predictions, times and folder size."""
    _, target, _, task, _ = TABLES[name]
    folder = train.parent / f"autogluon_{preset}"
    out = train.parent / f"autogluon_{preset}.csv"
    command = [opts.autogluon_python, "-c", AUTOGLUON_SIDE, str(train), str(holdout), target,
               task, preset, str(opts.budget), str(folder), str(out)]  # fmt: skip
    start = time.perf_counter()
    run(command, train.parent / f"autogluon_{preset}.log")
    wall = time.perf_counter() - start
    info = json.loads(Path(str(out) + ".json").read_text())
    return {
        **info,
        "wall_s": wall,
        "predictions": pd.read_csv(out)["prediction"],
        "size_bytes": folder_bytes(folder),
    }


def one_table(name: str, opts: argparse.Namespace, root: Path, seed: int) -> dict[str, Any]:
    task = TABLES[name][3]
    train, holdout, truth = split_table(name, root / name, seed)
    row: dict[str, Any] = {"table": name, "task": task, "rows": len(pd.read_csv(train))}
    sides = {"mlcycle": lambda: mlcycle_side(name, train, holdout, opts)}
    if opts.autogluon_python:
        for preset in opts.autogluon_presets:
            sides[preset] = lambda p=preset: autogluon_side(name, train, holdout, p, opts)
    for side, work in sides.items():
        try:
            result = work()
        except RuntimeError as error:  # one side failing is reported, the others go on
            print(f"  {name} {side} failed: {error}", flush=True)
            row[side] = {"error": str(error).splitlines()[-1]}
            continue
        result.update(scores(task, truth, result.pop("predictions")))
        row[side] = result
        print(f"  {name} {side}: {json.dumps(result)}", flush=True)
    return row


def mean_of(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One side over the splits: the mean of each number, the picks joined."""
    done = [r for r in results if "error" not in r]
    if not done:
        return results[0]
    mean: dict[str, Any] = {"splits": len(done)}
    for key, value in done[0].items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            mean[key] = float(np.mean([r[key] for r in done]))
        elif key in ("best", "best_model"):
            mean[key] = " / ".join(str(r[key]) for r in done)
        else:
            mean[key] = value
    return mean


def over_seeds(name: str, opts: argparse.Namespace, root: Path) -> dict[str, Any]:
    """The table on each split (``--seeds``); its row of means, each split kept."""
    seeds = [opts.seed + i for i in range(opts.seeds)]
    runs = [one_table(name, opts, root / f"seed{s}" if opts.seeds > 1 else root, s) for s in seeds]
    if len(runs) == 1:
        return runs[0]
    row = {k: v for k, v in runs[0].items() if not isinstance(v, dict)}
    for side in (k for k, v in runs[0].items() if isinstance(v, dict)):
        row[side] = mean_of([r[side] for r in runs if side in r])
    return {**row, "seeds": seeds, "per_seed": runs}


def score_text(result: dict[str, Any] | None, task: str) -> str:
    if result is None:
        return "-"
    if "error" in result:
        return "failed"
    if task == "classification":
        return f"{result['f1']:.3f}"
    return f"{result['r2']:.3f} ({result['rmse']:.1f})"


def seconds(result: dict[str, Any] | None) -> str:
    if result is None or "error" in result:
        return "-"
    return f"{result.get('total_s', result.get('wall_s', 0.0)):.0f}"


def markdown(rows: list[dict[str, Any]], opts: argparse.Namespace) -> str:
    """The side-by-side table and the sizes table."""
    splits = f", mean of {opts.seeds} splits" if opts.seeds > 1 else ""
    head = (
        f"| table | metric | mlcycle ({opts.preset}, {opts.budget:g} s{splits}) | s | "
        "AutoGluon medium | s | AutoGluon best | s | mlcycle / AG medium |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
    )
    lines, sizes = [], []
    for row in rows:
        task, ours = row["task"], row["mlcycle"]
        medium, best = row.get("medium_quality"), row.get("best_quality")
        key = "f1" if task == "classification" else "r2"
        ok = key in ours and medium and medium.get(key)
        ratio = f"{ours[key] / medium[key]:.3f}" if ok else "-"
        metric = "macro F1" if task == "classification" else "R2 (RMSE)"
        lines.append(
            f"| {row['table']} | {metric} | {score_text(ours, task)} {'' if 'splits' in ours else ours.get('best', '')} | "
            f"{seconds(ours)} | {score_text(medium, task)} | {seconds(medium)} | "
            f"{score_text(best, task)} | {seconds(best)} | {ratio} |"
        )
        mb = [f"{ours['size_bytes'] / 1e6:.3f} MB (1 file)" if "size_bytes" in ours else "-"]
        for result in (medium, best):
            mb.append(
                f"{result['size_bytes'] / 1e6:.1f} MB" if result and "size_bytes" in result else "-"
            )
        sizes.append(f"| {row['table']} | " + " | ".join(mb) + " |")
    size_head = (
        "\n| table | mlcycle model.onnx | AutoGluon medium folder | AutoGluon best folder |\n"
        "| --- | --- | --- | --- |\n"
    )
    return head + "\n".join(lines) + "\n" + size_head + "\n".join(sizes)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", nargs="+", default=list(TABLES), choices=list(TABLES))
    parser.add_argument("--budget", type=float, default=45.0,
                        help="wall seconds per table for each side (compare --time_limit, "
                        "AutoGluon time_limit); default 45")  # fmt: skip
    parser.add_argument("--preset", default="medium", choices=["fast", "medium", "best"])
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="the 80/20 split's seed")
    parser.add_argument("--seeds", type=int, default=1,
                        help="splits per table (seeds SEED, SEED+1, ...): the table shows each "
                        "side's mean over them; one held-out fifth of a small table is noisy")  # fmt: skip
    parser.add_argument("--autogluon-presets", nargs="+",
                        default=["medium_quality", "best_quality"],
                        choices=["medium_quality", "best_quality", "high_quality", "good_quality"])  # fmt: skip
    parser.add_argument(
        "--autogluon-python",
        default=None,
        help="python of a venv with autogluon.tabular; absent: mlcycle alone",
    )
    parser.add_argument("--out", default=None, help="work folder (default: a temp folder)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    opts = parse(argv)
    if opts.autogluon_python and not Path(opts.autogluon_python).exists():
        print(f"error: --autogluon-python {opts.autogluon_python} does not exist", file=sys.stderr)
        return 2
    if not opts.autogluon_python:
        print("no --autogluon-python: mlcycle's side alone, no AutoGluon columns")
    root = Path(opts.out or tempfile.mkdtemp(prefix="tables_vs_autogluon_"))
    print(f"work folder: {root}; {os.cpu_count()} CPU(s)", flush=True)
    rows = []
    for name in opts.tables:
        rows.append(over_seeds(name, opts, root))
        (root / "results.json").write_text(json.dumps(rows, indent=1, default=str))
    print(markdown(rows, opts))
    if opts.autogluon_python:
        versions = {str(r.get("medium_quality", {}).get("version")) for r in rows}
        print(f"AutoGluon version(s): {sorted(versions)}")
    else:
        print("mlcycle's side alone: no --autogluon-python was given")
    return 0


if __name__ == "__main__":
    sys.exit(main())
