"""``ensemble.py --runs`` on table runs: one run directory holding the members' copies.

Members are table runs (the MLP or classic models) trained on the same table and split; each
keeps its own fitted pipeline. The combination is fit on the members' val predictions (soft
or weighted voting; regression: the mean prediction), and the result is an ordinary table run
directory: evaluate.py scores it, export.py writes ONE ``model.onnx`` on the raw columns and
predict.py ``--csv`` runs it. See docs/ensemble.md, "Tables".
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from mlcycle.core.errors import UserError
from mlcycle.core.objective import parse_objective
from mlcycle.core.record import Stopwatch, library_versions, write_json
from mlcycle.run.loader import Run, sha256
from mlcycle.selection.ensemble import combine
from mlcycle.selection.ensemble.kinds import Request
from mlcycle.selection.ensemble.members import split_rows, unique_name
from mlcycle.selection.ensemble.methods import brief, choose, score_methods
from mlcycle.selection.ensemble.output import check_out, create_out, save_checkpoint, write_config
from mlcycle.selection.scores import fold_scores, regression_scores
from mlcycle.tables.selection.ensemble_task import TableEnsembleTask

TASK_CLASS = f"{TableEnsembleTask.__module__}.{TableEnsembleTask.__name__}"
TABLE_METHODS = ("soft", "weighted")
DATA_FILES = ("data.json", "data_manifest.csv", "skipped_files.csv", "schema.json")
NOT_COPIED = shutil.ignore_patterns(
    "export", "tensorboard", "lightning_logs", "*.png", "worst_predictions*"
)


def load_members(paths: list[str]) -> list[tuple[str, Run]]:
    """Named table runs: same target, task kind, classes and ``splits.csv``."""
    if len(paths) < 2:
        raise UserError("--runs needs at least two run directories to ensemble")
    runs = [Run(p) for p in paths]
    first = runs[0]
    split = split_rows(first)
    taken: set[str] = set()
    for run in runs:
        if run.config.get("model", {}).get("class_path") == TASK_CLASS:
            raise UserError(f"run '{run.path}' is an ensemble; members are runs of train.py")
        for key in ("task", "target", "class_names"):
            if run.data_info.get(key) != first.data_info.get(key):
                raise UserError(
                    f"run '{run.path}' has {key} {run.data_info.get(key)!r}, run '{first.path}' "
                    f"{first.data_info.get(key)!r}; ensemble members predict the same target"
                )
        if split_rows(run) != split:
            raise UserError(
                f"run '{run.path}' was trained on another split than '{first.path}' (their "
                "splits.csv differ); members must share the split whose val the combination is "
                "fit on"
            )
    return [(unique_name(run.path, taken), run) for run in runs]


def build_task(members: list[tuple[str, Path]], weights: list[float], first: Run) -> Any:
    info = first.data_info
    regression = info.get("task") == "regression"
    names = [str(c) for c in info.get("class_names") or []]
    task = TableEnsembleTask(
        members=[{"name": name, "run": str(path)} for name, path in members],
        weights=[float(w) for w in weights],
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


def fit(task: Any, method: str, objective: Any) -> dict[str, Any]:
    """Every member's val scores, the combination and its honest val scores."""
    _, data = task.loaded()[0]
    positions = np.asarray(data.split_positions("val"))
    if not len(positions):
        raise UserError("the members' val split is empty; the combination is fit on it")
    scores = task.member_scores(task.rows(positions))
    target = np.asarray(data.table.y[positions])
    members = scores.shape[0]
    if task.regression:
        if method not in ("soft", "all"):
            raise UserError(f"--method {method}: a regression ensemble is the mean; use soft")
        weights = [1.0 / members] * members
        singles = [value_scores(s, target) for s in scores]
        mean = np.tensordot(weights, scores.astype(np.float64), axes=1)
        return {"method": "soft", "weights": weights, "scores": value_scores(mean, target),
                "singles": singles, "rows": len(target), "cross_fitted": False}  # fmt: skip
    classes = int(task.hparams.num_classes)
    methods = list(TABLE_METHODS) if method == "all" else [method]
    probs = scores.astype(np.float32)
    outcomes = score_methods(methods, probs, target, combine.stratified_folds(target), classes)
    chosen = choose(outcomes, objective)
    return {
        "method": chosen.method,
        "weights": chosen.combination.weights,
        "scores": chosen.scores,
        "singles": [fold_scores(p, target, classes) for p in probs],
        "rows": len(target),
        "cross_fitted": chosen.cross_fitted,
        "methods": {o.method: {"weights": o.combination.weights, "scores": brief(o.scores),
                               "scores_in_sample": brief(o.in_sample)} for o in outcomes},
    }  # fmt: skip


def metrics_record(task: Any, fitted: dict[str, Any], names: list[str]) -> dict[str, Any]:
    scores = fitted["scores"]
    monitor = "val/rmse" if task.regression else "val/f1"
    record: dict[str, Any] = {"status": "finished", "monitor": monitor, "best_epoch": None}
    keys = ("rmse", "mae", "r2") if task.regression else ("f1", "acc", "precision", "recall", "loss", "error")  # fmt: skip
    record.update({f"val/{k}": scores[k] for k in keys})
    for name, value in zip(task.class_names, scores.get("f1_per_class", []), strict=False):
        record[f"val/f1/{name}"] = value
    record["scored_on"] = f"val split ({fitted['rows']} rows) of the members' splits.csv" + (
        "; the weighted combination cross-fitted over folds of val, the final one fit on all "
        "of val (evaluate.py --split val scores it in-sample)"
        if fitted["cross_fitted"]
        else ""
    )
    record["ensemble"] = {"method": fitted["method"], "members": names}
    record["versions"] = library_versions()
    return record


def print_table(task: Any, fitted: dict[str, Any], names: list[str]) -> None:
    key = "rmse" if task.regression else "f1"
    label = "RMSE" if task.regression else "macro F1"
    print(f"table ensemble of {len(names)} runs on {fitted['rows']} val rows")

    def line(scores: dict[str, Any]) -> str:
        loss = "" if task.regression else f"  log loss {scores['loss']:.4f}"
        return f"{label} {scores[key]:.4f}{loss}"

    for name, single in zip(names, fitted["singles"], strict=True):
        print(f"  {name:<28} {line(single)}")
    weights = ", ".join(f"{n} {w:.3f}" for n, w in zip(names, fitted["weights"], strict=True))
    what = f"{fitted['method']} (cross-fitted)" if fitted["cross_fitted"] else fitted["method"]
    print(f"  {what:<28} {line(fitted['scores'])}  weights {weights}")


def build(request: Request) -> Path:
    """``ensemble.py --runs`` on table runs: fit, then write the run directory."""
    if request.shortlist is not None:  # its fold models are not bagged into one graph yet
        raise UserError(
            f"shortlist '{request.shortlist}' is of a table comparison; pass its members' fold-0 "
            "runs with --runs (candidates/<name>/fold0; docs/ensemble.md, Tables)"
        )
    clock = Stopwatch()
    if request.method == "stacking":
        raise UserError(
            "--method stacking is for image runs; table ensembles take soft or weighted"
        )
    members = load_members(request.runs or [])
    first = members[0][1]
    objective = parse_objective(first.config.get("objective"))
    out = check_out(request.out).resolve()
    names = [name for name, _ in members]
    probe = build_task([(n, r.path) for n, r in members], [1 / len(members)] * len(members), first)
    fitted = fit(probe, request.method, objective)
    print_table(probe, fitted, names)

    create_out(out)
    copy_members(out, members)
    task = build_task([(n, out / "members" / n) for n in names], fitted["weights"], first)
    head = probe.loaded()[0][0]
    task.target_mean.copy_(head.target_mean)  # the evaluator's regression loss: first member's
    task.target_std.copy_(head.target_std)
    write_config(out, task, first.config["data"], objective, "a table ensemble")
    save_checkpoint(task, out / "checkpoints" / "best.ckpt")
    write_json(out / "metrics.json", metrics_record(task, fitted, names))
    record = ensemble_record(out, members, fitted, request.method)
    write_json(
        out / "ensemble.json",
        {"command": request.command, **record, "wall_time_s": clock.seconds},
    )
    print(f"run directory: {out}")
    return out


def copy_members(out: Path, members: list[tuple[str, Run]]) -> None:
    """The ensemble keeps its own copy of every member, and the first one's data files."""
    first = members[0][1]
    for name, run in members:
        shutil.copytree(run.path, out / "members" / name, ignore=NOT_COPIED, dirs_exist_ok=True)
    shutil.copyfile(first.path / "splits.csv", out / "splits.csv")
    for name in DATA_FILES:
        if (first.path / name).is_file():
            shutil.copyfile(first.path / name, out / name)


def ensemble_record(
    out: Path, members: list[tuple[str, Run]], fitted: dict[str, Any], method: str
) -> dict[str, Any]:
    """ensemble.json, less the command and the wall time."""
    return {
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": "runs",
        "kind": "table",
        "method": fitted["method"],
        "method_asked": method,
        "combination": {"method": fitted["method"], "weights": fitted["weights"]},
        "rows": fitted["rows"],
        "members": [
            {
                "name": name,
                "run": str(run.path),
                "copy": str(out / "members" / name),
                "class_path": run.config.get("model", {}).get("class_path"),
                "sha256": sha256(run.checkpoint("best")),
                "weight": weight,
                "scores": brief(single),
            }
            for (name, run), weight, single in zip(
                members, fitted["weights"], fitted["singles"], strict=True
            )
        ],
        "scores": brief(fitted["scores"]),
        "methods": fitted.get("methods"),
    }
