"""``ensemble.py --runs`` on table runs: one run directory holding the members' copies.

Members are table runs (the MLP or classic models) trained on the same table and split; each
keeps its own fitted pipeline. The combination is fit on the members' val predictions (soft
or weighted voting; regression: the mean prediction), and the result is an ordinary table run
directory: evaluate.py scores it, export.py writes ONE ``model.onnx`` on the raw columns and
predict.py ``--csv`` runs it. See docs/ensemble.md, "Tables".
"""

from __future__ import annotations

import shlex
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mlcycle.core.errors import UserError
from mlcycle.core.objective import parse_objective
from mlcycle.core.record import Stopwatch, library_versions, write_json
from mlcycle.run.loader import Run, sha256
from mlcycle.selection import combine
from mlcycle.selection.ensemble_members import split_rows, unique_name
from mlcycle.selection.ensemble_table_task import TableEnsembleTask
from mlcycle.selection.scores import fold_scores

TASK_CLASS = f"{TableEnsembleTask.__module__}.{TableEnsembleTask.__name__}"
TABLE_METHODS = ("soft", "weighted")
DATA_FILES = ("data.json", "data_manifest.csv", "skipped_files.csv", "schema.json")
NOT_COPIED = shutil.ignore_patterns(
    "export", "tensorboard", "lightning_logs", "*.png", "worst_predictions*"
)


def is_table(path: str) -> bool:
    return Run(path).data_info.get("kind") == "table"


def given_tables(paths: list[str]) -> bool:
    """Whether ``--runs`` are table runs; refused when tables and images are mixed."""
    kinds = [is_table(p) for p in paths]
    if any(kinds) and not all(kinds):
        other = paths[kinds.index(not kinds[0])]
        raise UserError(f"run '{other}' is not of the same kind (table or images) as '{paths[0]}'")
    return all(kinds)


def refuse_table_shortlist(path: str) -> None:
    """A table comparison's shortlist is refused in one line that says what to pass instead
    (its fold models are not bagged into one graph yet)."""
    document = yaml.safe_load(Path(path).read_text()) if Path(path).is_file() else None
    members = document.get("members") if isinstance(document, dict) else None
    runs = [r for m in members or [] if isinstance(m, dict) for r in m.get("runs") or []]
    if runs and Path(runs[0]).is_dir() and is_table(runs[0]):
        raise UserError(
            f"shortlist '{path}' is of a table comparison; pass its members' fold-0 runs with "
            "--runs (candidates/<name>/fold0; docs/ensemble.md, Tables)"
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


def regression_scores(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    error = pred.astype(np.float64) - target.astype(np.float64)
    total = float(((target - target.mean()) ** 2).sum()) or 1.0
    return {
        "rmse": round(float(np.sqrt((error**2).mean())), 6),
        "mae": round(float(np.abs(error).mean()), 6),
        "r2": round(1.0 - float((error**2).sum()) / total, 6),
    }


def fit(task: Any, method: str, objective: Any) -> dict[str, Any]:
    """Every member's val scores, the combination and its honest val scores."""
    from mlcycle.selection.ensemble import choose, score_methods

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
        singles = [regression_scores(s, target) for s in scores]
        mean = np.tensordot(weights, scores.astype(np.float64), axes=1)
        return {"method": "soft", "weights": weights, "scores": regression_scores(mean, target),
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


def brief(scores: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in scores.items() if k != "f1_per_class"}


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


def write_config(out: Path, task: Any, first: Run, objective: Any) -> None:
    from mlcycle.selection.ensemble import plain

    data = plain(first.config["data"])
    data.setdefault("init_args", {})["split_file"] = str(out / "splits.csv")
    config: dict[str, Any] = {
        "model": {"class_path": TASK_CLASS, "init_args": plain(dict(task.hparams))},
        "data": data,
    }
    if objective is not None:
        config["objective"] = objective.to_dict()
    (out / "config.yaml").write_text(
        "# a table ensemble built by ensemble.py (see ensemble.json); not trained by train.py\n"
        + yaml.safe_dump(config, sort_keys=False)
    )


def main_tables(
    paths: list[str], method: str, given_out: str | None, argv: list[str] | None
) -> Path:
    """``ensemble.py --runs`` on table runs: fit, then write the run directory."""
    from mlcycle.selection.ensemble import check_out, create_out, save_checkpoint

    clock = Stopwatch()
    if method == "stacking":
        raise UserError(
            "--method stacking is for image runs; table ensembles take soft or weighted"
        )
    members = load_members(paths)
    first = members[0][1]
    objective = parse_objective(first.config.get("objective"))
    out = check_out(given_out).resolve()
    names = [name for name, _ in members]
    probe = build_task([(n, r.path) for n, r in members], [1 / len(members)] * len(members), first)
    fitted = fit(probe, method, objective)
    print_table(probe, fitted, names)

    create_out(out)
    for name, run in members:  # the ensemble keeps its own copy of every member
        shutil.copytree(run.path, out / "members" / name, ignore=NOT_COPIED, dirs_exist_ok=True)
    shutil.copyfile(first.path / "splits.csv", out / "splits.csv")
    for name in DATA_FILES:
        if (first.path / name).is_file():
            shutil.copyfile(first.path / name, out / name)
    task = build_task([(n, out / "members" / n) for n in names], fitted["weights"], first)
    head = probe.loaded()[0][0]
    task.target_mean.copy_(head.target_mean)  # the evaluator's regression loss: first member's
    task.target_std.copy_(head.target_std)
    write_config(out, task, first, objective)
    save_checkpoint(task, out / "checkpoints" / "best.ckpt")
    write_json(out / "metrics.json", metrics_record(task, fitted, names))
    write_json(
        out / "ensemble.json",
        {
            "command": shlex.join(["ensemble.py", *(sys.argv[1:] if argv is None else argv)]),
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
            "wall_time_s": clock.seconds,
        },
    )
    print(f"run directory: {out}")
    return out
