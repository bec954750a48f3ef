"""``ensemble.py`` on table runs: one run directory holding the members' copies.

Members are table runs (the MLP, classic or boosted models) trained on the same table: with
``--runs``, runs sharing one split, the combination fit on their val predictions; with
``--shortlist``, a table comparison's short-listed candidates, each the bag of its fold runs,
the combination fit on compare.py's out-of-fold predictions. Each run keeps its own fitted
pipeline. Combinations: soft, weighted or stacking (a logistic regression on the members'
probabilities); regression: the mean, greedy weights (ensemble selection) or a ridge stack. The
result is an ordinary table run directory: evaluate.py scores it, export.py writes ONE ``model.onnx`` on the raw columns and
predict.py ``--csv`` runs it. See docs/ensemble.md, "Tables".
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from mlcycle.core.errors import UserError
from mlcycle.core.record import Stopwatch, library_versions, write_json
from mlcycle.run.loader import Run, sha256
from mlcycle.selection.ensemble import combine
from mlcycle.selection.ensemble.kinds import Request
from mlcycle.selection.ensemble.methods import (
    brief,
    choose,
    choose_values,
    score_methods,
    score_value_methods,
)
from mlcycle.selection.ensemble.output import check_out, create_out, save_checkpoint, write_config
from mlcycle.selection.scores import fold_scores, regression_scores
from mlcycle.tables.selection.ensemble_members import Source, from_runs, from_shortlist
from mlcycle.tables.selection.ensemble_task import TableEnsembleTask

DATA_FILES = ("data.json", "data_manifest.csv", "skipped_files.csv", "schema.json")
NOT_COPIED = shutil.ignore_patterns(
    "export", "tensorboard", "lightning_logs", "*.png", "worst_predictions*"
)


def build_task(
    members: list[dict[str, Any]], fitted: dict[str, Any] | None, first: Run
) -> TableEnsembleTask:
    """The ensemble of ``members`` (name and runs), soft until ``fitted`` says otherwise."""
    info = first.data_info
    regression = info.get("task") == "regression"
    names = [str(c) for c in info.get("class_names") or []]
    stack = fitted["combination"] if fitted and fitted["method"] == "stacking" else None
    task = TableEnsembleTask(
        members=members,
        weights=fitted["weights"] if fitted else [1.0 / len(members)] * len(members),
        combination=stack,
        num_classes=1 if regression else len(names),
        class_names=None if regression else names,
        num_features=1,
        num_numeric=1,
        cardinalities=[],
        task_kind="regression" if regression else "classification",
    )
    return task.eval()


def value_scores(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and R^2 of a regression member or of the ensemble."""
    scores = regression_scores(pred, target)
    return {k: scores[k] for k in ("rmse", "mae", "r2")}


def held_out(task: TableEnsembleTask, source: Source) -> tuple[np.ndarray, ...]:
    """The members' held-out scores, targets and the folds the combination is cross-fitted
    over: compare.py's out-of-fold predictions and folds (a shortlist), else the members' val
    predictions and folds dealt over val."""
    if source.oof is not None:
        return source.oof["scores"], source.oof["target"], source.oof["folds"]
    _, data = task.loaded()[0]
    positions = np.asarray(data.split_positions("val"))
    if not len(positions):
        raise UserError("the members' val split is empty; the combination is fit on it")
    scores = task.member_scores(task.rows(positions))
    target = np.asarray(data.table.y[positions])
    if task.regression:  # (M, N) predictions, (M, N, 1) from a task that keeps the axis
        values = scores[..., 0] if scores.ndim == 3 else scores
        return values, target, np.arange(len(target)) % min(5, max(2, len(target) // 2))
    return scores, target, combine.stratified_folds(target)


def fit(task: TableEnsembleTask, source: Source, method: str) -> dict[str, Any]:
    """Every member's held-out scores, the combination and its honest scores."""
    scores, target, folds = held_out(task, source)
    if task.regression:
        values = scores.astype(np.float64).reshape(scores.shape[0], -1)
        methods = list(combine.VALUE_METHODS) if method == "all" else [method]
        outcomes = score_value_methods(methods, values, target, folds)
        chosen = choose_values(outcomes, source.objective)
        singles = [value_scores(v, target) for v in values]
    else:
        classes = int(task.hparams.num_classes)
        methods = list(combine.METHODS) if method == "all" else [method]
        probs = scores.astype(np.float32)
        outcomes = score_methods(methods, probs, target, folds, classes)
        chosen = choose(outcomes, source.objective)
        singles = [fold_scores(p, target, classes) for p in probs]
    members = len(source.members)
    return {
        "method": chosen.method,
        "weights": chosen.combination.weights or [1.0 / members] * members,
        "combination": chosen.combination.to_dict(),
        "scores": chosen.scores,
        "singles": singles,
        "rows": len(target),
        "folds": len(np.unique(folds)),
        "cross_fitted": chosen.cross_fitted,
        "methods": {o.method: {"combination": o.combination.to_dict(), "scores": brief(o.scores),
                               "scores_in_sample": brief(o.in_sample)} for o in outcomes},
    }  # fmt: skip


def scored_on(source: Source, fitted: dict[str, Any]) -> str:
    if source.kind == "shortlist":
        text = (
            f"out-of-fold predictions of the comparison ({fitted['rows']} rows, "
            f"{fitted['folds']} folds)"
        )
        fold = "the comparison's folds"
    else:
        text = f"val split ({fitted['rows']} rows) of the members' splits.csv"
        fold = "folds of val"
    if fitted["cross_fitted"]:
        text += (
            f"; the {fitted['method']} combination cross-fitted over {fold}, the final one fit "
            "on all of them"
        )
    return text


def metrics_record(
    task: TableEnsembleTask, source: Source, fitted: dict[str, Any], names: list[str]
) -> dict[str, Any]:
    scores = fitted["scores"]
    monitor = "val/rmse" if task.regression else "val/f1"
    record: dict[str, Any] = {"status": "finished", "monitor": monitor, "best_epoch": None}
    keys = ("rmse", "mae", "r2") if task.regression else ("f1", "acc", "precision", "recall", "loss", "error")  # fmt: skip
    record.update({f"val/{k}": scores[k] for k in keys})
    for name, value in zip(task.class_names, scores.get("f1_per_class", []), strict=False):
        record[f"val/f1/{name}"] = value
    record["scored_on"] = scored_on(source, fitted)
    record["ensemble"] = {"method": fitted["method"], "members": names}
    record["versions"] = library_versions()
    return record


def print_table(task: TableEnsembleTask, fitted: dict[str, Any], names: list[str]) -> None:
    key = "rmse" if task.regression else "f1"
    label = "RMSE" if task.regression else "macro F1"
    print(f"table ensemble of {len(names)} members on {fitted['rows']} held-out rows")

    def line(scores: dict[str, Any]) -> str:
        loss = "" if task.regression else f"  log loss {scores['loss']:.4f}"
        return f"{label} {scores[key]:.4f}{loss}"

    for name, single in zip(names, fitted["singles"], strict=True):
        print(f"  {name:<28} {line(single)}")
    what = f"{fitted['method']} (cross-fitted)" if fitted["cross_fitted"] else fitted["method"]
    if fitted["method"] == "stacking":
        print(f"  {what:<28} {line(fitted['scores'])}")
        return
    weights = ", ".join(f"{n} {w:.3f}" for n, w in zip(names, fitted["weights"], strict=True))
    print(f"  {what:<28} {line(fitted['scores'])}  weights {weights}")


def member_hparams(source: Source, out: Path | None) -> list[dict[str, Any]]:
    """The task's ``members``: where each run is (its copy under ``out`` once written)."""
    found = []
    for name, runs in source.members:
        paths = [copy_path(out, name, run, len(runs)) if out else run.path for run in runs]
        found.append({"name": name, "runs": [str(p) for p in paths]})
    return found


def copy_path(out: Path, name: str, run: Run, size: int) -> Path:
    return out / "members" / name / (run.path.name if size > 1 else "")


def build(request: Request) -> Path:
    """``ensemble.py`` on table runs or a table shortlist: fit, then write the run directory."""
    clock = Stopwatch()
    if request.shortlist is not None:
        source = from_shortlist(request.shortlist)
    else:
        source = from_runs(request.runs or [])
    out = check_out(request.out).resolve()
    names = [name for name, _ in source.members]
    probe = build_task(member_hparams(source, None), None, source.first)
    fitted = fit(probe, source, request.method)
    print_table(probe, fitted, names)
    if request.method == "all":
        print(f"method: {fitted['method']} (the best held-out score)")

    create_out(out)
    copy_members(out, source)
    task = build_task(member_hparams(source, out), fitted, source.first)
    head = probe.loaded()[0][0]
    task.target_mean.copy_(head.target_mean)  # the evaluator's regression loss: first member's
    task.target_std.copy_(head.target_std)
    write_config(out, task, source.first.config["data"], source.objective, "a table ensemble")
    save_checkpoint(task, out / "checkpoints" / "best.ckpt")
    write_json(out / "metrics.json", metrics_record(task, source, fitted, names))
    record = ensemble_record(out, source, fitted, request.method)
    write_json(
        out / "ensemble.json",
        {"command": request.command, **record, "wall_time_s": clock.seconds},
    )
    print(f"run directory: {out}")
    return out


def copy_members(out: Path, source: Source) -> None:
    """The ensemble keeps its own copy of every member run, the split and the first run's data
    files."""
    for name, runs in source.members:
        for run in runs:
            target = copy_path(out, name, run, len(runs))
            shutil.copytree(run.path, target, ignore=NOT_COPIED, dirs_exist_ok=True)
    shutil.copyfile(source.split_file, out / "splits.csv")
    for name in DATA_FILES:
        if (source.first.path / name).is_file():
            shutil.copyfile(source.first.path / name, out / name)


def ensemble_record(
    out: Path, source: Source, fitted: dict[str, Any], method: str
) -> dict[str, Any]:
    """ensemble.json, less the command and the wall time."""
    return {
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": source.kind,
        "comparison": str(source.split_file.parent.parent) if source.oof is not None else None,
        "kind": "table",
        "method": fitted["method"],
        "method_asked": method,
        "combination": fitted["combination"],
        "rows": fitted["rows"],
        "members": [
            {
                "name": name,
                "class_path": runs[0].config.get("model", {}).get("class_path"),
                "weight": weight,
                "scores": brief(single),
                "runs": [
                    {
                        "run": str(run.path),
                        "copy": str(copy_path(out, name, run, len(runs))),
                        "sha256": sha256(run.checkpoint("best")),
                    }
                    for run in runs
                ],
            }
            for (name, runs), weight, single in zip(
                source.members, fitted["weights"], fitted["singles"], strict=True
            )
        ],
        "scores": brief(fitted["scores"]),
        "methods": fitted.get("methods"),
    }
