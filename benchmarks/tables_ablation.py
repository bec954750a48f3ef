"""Tables: what each cleaning step is worth, the MLP against the classic models, wall time and
export parity, on the generated ``messy`` table and on scikit-learn's breast cancer table.

    python benchmarks/tables_ablation.py                 # both tables
    python benchmarks/tables_ablation.py --tables messy  # one
    python benchmarks/tables_ablation.py --out runs/tables_ablation

For each table (its config in configs/tables/):

1. **Ablation**: the config's pipeline (categories one-hot, as the classic models need) and,
   for each step, the same pipeline without it; each is fitted on the train rows and scored
   by logistic regression and a random forest on the val rows (macro F1), averaged over
   ``--seeds`` split seeds (5: 42..46), since one small val split is noisy.
2. **MLP vs classic**: train.py with the config (the MLP) and with each classic short name
   (configs/tables/classic.yaml), on the config's split (seed 42); val macro F1 and the wall
   time of each train.py run (read, split, pipeline, fit, checkpoints, figures).
3. **Export parity**: export.py on the MLP run and on the best classic run: max |probability
   - Python| over the val rows (the graph fed by predict.py's CSV reader).

Results: ``<out>/tables_ablation.json`` and Markdown tables on stdout. Torch and the
estimators run on the cores the machine has (``--threads`` caps torch's).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

CLASSIC = ("linear", "svm", "knn", "decision_tree", "random_forest", "hist_gradient_boosting")
ABLATION_MODELS = {
    "logistic": ("linear", {}),
    "random_forest": ("random_forest", {"n_estimators": 200}),
}


def variants(base: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The full pipeline and, per step, the pipeline without it."""

    def without(**changes: Any) -> dict[str, Any]:
        out = copy.deepcopy(base)
        for key, value in changes.items():
            group, _, leaf = key.partition("__")
            if leaf:
                out.setdefault(group, {})[leaf] = value
            else:
                out[group] = value
        return out

    return {
        "full pipeline": copy.deepcopy(base),
        "- missing indicators": without(missing__indicator=False),
        "- drop mostly-missing columns": without(missing__drop_columns_over=None),
        "- outlier clipping": without(outliers__handle="none"),
        "- skew transforms": without(transform={"default": "none", "columns": {}}),
        "- date parts": without(dates__parts=[]),
        "- group aggregates": without(aggregates=[]),
        "- scaling": without(scale="none"),
        "- feature selection": without(
            select={"constant": False, "near_constant": None, "correlated": None}
        ),
        "categories ordinal (not one-hot)": without(
            categorical={"encode": "ordinal", "columns": {}}
        ),
        "categories target-encoded": without(categorical={"encode": "target", "columns": {}}),
        "nothing but imputation": {
            "missing": {"indicator": False, "drop_columns_over": None},
            "outliers": {"handle": "none"},
            "transform": {"default": "none"},
            "dates": {"parts": []},
            "categorical": {"encode": "ordinal"},
            "scale": "none",
            "select": {"constant": False, "near_constant": None, "correlated": None},
        },
    }


def macro_f1(probs: np.ndarray, y: np.ndarray, k: int) -> float:
    pred = probs.argmax(axis=1)
    scores = []
    for c in range(k):
        tp = float(((pred == c) & (y == c)).sum())
        fp = float(((pred == c) & (y != c)).sum())
        fn = float(((pred != c) & (y == c)).sum())
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return float(np.mean(scores))


def ablation(
    data_args: dict[str, Any], pipeline: dict[str, Any], seeds: list[int]
) -> list[dict[str, Any]]:
    """Each variant's val macro F1 per model: the mean (and std) over the split seeds, so a
    step's effect can be told from the noise of one small val split."""
    from mlcycle.tables import TabularData
    from mlcycle.tables.classic import build_estimator, class_probabilities

    rows = []
    for name, config in variants(pipeline).items():
        row: dict[str, Any] = {"variant": name}
        scores: dict[str, list[float]] = {label: [] for label in ABLATION_MODELS}
        try:
            for seed in seeds:
                data = TabularData(**{**data_args, "pipeline": config, "split_seed": seed})
                with contextlib.redirect_stdout(io.StringIO()):
                    data.setup()
                x, y = data.arrays("train")
                xv, yv = data.arrays("val")
                row["features"] = int(x.shape[1])
                for label, (estimator, params) in ABLATION_MODELS.items():
                    model = build_estimator(estimator, params, "classification", 0)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        model.fit(np.nan_to_num(x), y)
                    probs = class_probabilities(model, np.nan_to_num(xv), data.num_classes)
                    scores[label].append(macro_f1(probs, yv, data.num_classes))
            for label, values in scores.items():
                row[label] = round(float(np.mean(values)), 4)
                row[f"{label}_sd"] = round(float(np.std(values)), 4)
        except Exception as exc:  # a variant the table cannot take (nothing left to select)
            row["error"] = " ".join(str(exc).split())[:160]
        rows.append(row)
    return rows


def train(config: Path, run_dir: Path, *extra: str) -> dict[str, Any]:
    from mlcycle.training.fit import fit

    clock = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        fit(
            [
                "--config", str(config), *extra, f"--run_dir={run_dir}",
                "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
            ]
        )  # fmt: skip
    record = json.loads((run_dir / "metrics.json").read_text())
    record["process_s"] = round(time.perf_counter() - clock, 1)
    return record


def export(run_dir: Path) -> dict[str, Any]:
    from mlcycle.commands.export import main

    with contextlib.redirect_stdout(io.StringIO()):
        report = main(["--run", str(run_dir)])["report"]
    return {
        "rows": report["rows"],
        "max_abs_prob_diff": report["onnx"]["max_abs_prob_diff"],
        "label_agree": report["onnx"]["label_agree"],
        "passed": report["passed"],
    }


def one_table(name: str, out: Path, seeds: list[int]) -> dict[str, Any]:
    config = ROOT / "configs" / "tables" / f"{name}.yaml"
    loaded = yaml.safe_load(config.read_text())
    data_args = dict(loaded["data"]["init_args"])
    pipeline = data_args.pop("pipeline", {}) or {}
    classic_pipeline = copy.deepcopy(pipeline)
    classic_pipeline["categorical"] = {"encode": "onehot", "columns": {}}
    result: dict[str, Any] = {"table": name, "config": str(config.relative_to(ROOT))}
    clock = time.perf_counter()
    result["ablation"] = ablation(data_args, classic_pipeline, seeds)
    result["ablation_seeds"] = seeds
    result["ablation_s"] = round(time.perf_counter() - clock, 1)
    runs: dict[str, dict[str, Any]] = {}
    runs["mlp"] = train(config, out / name / "mlp")
    onehot = f"--data.pipeline={json.dumps(classic_pipeline)}"
    for estimator in CLASSIC:
        runs[estimator] = train(
            config, out / name / estimator, "--config", str(ROOT / "configs/tables/classic.yaml"),
            f"--model.estimator={estimator}", "--model.params={}", onehot,
        )  # fmt: skip
    result["models"] = {
        k: {"val_f1": r.get("val/f1"), "val_acc": r.get("val/acc"), "epochs": r.get("epochs"),
            "train_s": r.get("wall_time_s"), "process_s": r["process_s"]}
        for k, r in runs.items()
    }  # fmt: skip
    best = max(CLASSIC, key=lambda k: runs[k].get("val/f1") or -1)
    result["best_classic"] = best
    result["export"] = {"mlp": export(out / name / "mlp"), best: export(out / name / best)}
    return result


def markdown(result: dict[str, Any]) -> str:
    seeds = len(result["ablation_seeds"])
    lines = [f"### {result['table']} ({result['config']})", ""]
    lines += [
        f"Val macro F1, mean +- std over {seeds} split seeds (change against the full pipeline):",
        "",
    ]
    lines += ["| pipeline | features | logistic F1 | random forest F1 |", "|---|---|---|---|"]
    full = result["ablation"][0]
    for row in result["ablation"]:
        if "error" in row:
            lines.append(f"| {row['variant']} | - | {row['error']} | |")
            continue
        cells = []
        for label in ABLATION_MODELS:
            delta = row[label] - full.get(label, row[label])
            text = f"{row[label]:.4f} +- {row[f'{label}_sd']:.4f}"
            cells.append(text + (f" ({delta:+.4f})" if row is not full else ""))
        lines.append(f"| {row['variant']} | {row['features']} | {' | '.join(cells)} |")
    lines += ["", "| model | val macro F1 | epochs | train.py wall s |", "|---|---|---|---|"]
    for name, m in sorted(result["models"].items(), key=lambda kv: -(kv[1]["val_f1"] or 0)):
        lines.append(f"| {name} | {m['val_f1']:.4f} | {m['epochs']} | {m['process_s']} |")
    lines += [
        "",
        "| export | val rows | max abs prob diff | labels agree | check |",
        "|---|---|---|---|---|",
    ]
    for name, e in result["export"].items():
        check = "pass" if e["passed"] else "FAIL"
        lines.append(
            f"| {name} | {e['rows']} | {e['max_abs_prob_diff']:.2e} | {e['label_agree']}/{e['rows']} | {check} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", nargs="+", default=["messy", "breast_cancer"])
    parser.add_argument("--out", default="runs/tables_ablation")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument(
        "--seeds", type=int, default=5, help="split seeds the ablation averages over"
    )
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        sys.exit(f"error: --out '{out}' is not empty; pass a new folder")
    out.mkdir(parents=True, exist_ok=True)
    clock = time.perf_counter()
    seeds = list(range(42, 42 + args.seeds))
    results = [one_table(name, out, seeds) for name in args.tables]
    summary = {
        "cores": os.cpu_count(),
        "total_s": round(time.perf_counter() - clock, 1),
        "tables": results,
    }
    (out / "tables_ablation.json").write_text(json.dumps(summary, indent=2) + "\n")
    for result in results:
        print(markdown(result) + "\n")
    print(f"{summary['total_s']} s on {summary['cores']} cores; {out / 'tables_ablation.json'}")


if __name__ == "__main__":
    main()
