"""What a tune study leaves in its folder, rewritten after every trial from the storage (so
every worker's trials are in it, and a killed worker leaves it current): ``trials.csv``,
``study.json``, ``best.yaml`` and three Optuna figures."""

from __future__ import annotations

import csv
import io
import json
import os
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from mlcycle.core.objective import Gate, train_gate
from mlcycle.selection.tune.setup import Tuning
from mlcycle.selection.tune.space import train_values
from mlcycle.selection.tune.study import counts, masked

FIGURES = {
    "optimization_history.png": "plot_optimization_history",
    "param_importances.png": "plot_param_importances",
    "parallel_coordinate.png": "plot_parallel_coordinate",
}
MIN_COMPLETE = 2  # below this, the figures show nothing worth a file


def atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` whole: other workers write the same files."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def seconds(trial: FrozenTrial) -> float | None:
    return round(trial.duration.total_seconds(), 2) if trial.duration else None


def trial_rows(tuning: Tuning, trials: list[FrozenTrial]) -> str:
    """trials.csv: one row per trial, one column per searched key."""
    keys = [p.key for p in tuning.params]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "number",
            "state",
            "value",
            "duration_s",
            *keys,
            "fold_values",
            "last_step",
            "worker",
            "run_dir",
            "error",
        ]
    )
    for t in trials:
        folds = t.user_attrs.get("fold_values")
        writer.writerow(
            [
                t.number,
                t.state.name,
                "" if t.value is None else round(t.value, 6),
                seconds(t) or "",
                *(t.params.get(k, "") for k in keys),
                ";".join(f"{v:.6g}" for v in folds) if folds else "",
                "" if t.last_step is None else t.last_step,
                t.user_attrs.get("worker", ""),
                t.user_attrs.get("run_dir", ""),
                t.user_attrs.get("error", ""),
            ]
        )
    return out.getvalue()


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return study.best_trial if complete else None


def gate_of(tuning: Tuning, best: FrozenTrial | None) -> Gate | None:
    """The objective checked on the best trial's val metrics (the mean over folds)."""
    if tuning.objective is None or best is None:
        return None
    metrics = {**best.user_attrs.get("metrics", {}), tuning.metric: best.value}
    return train_gate(tuning.objective, metrics)


def median_s(trials: list[FrozenTrial], state: TrialState) -> float | None:
    times = [s for t in trials if t.state == state and (s := seconds(t)) is not None]
    return round(float(np.median(times)), 2) if times else None


def summary(tuning: Tuning, study: optuna.Study, storage: str, n: int) -> dict[str, Any]:
    trials = study.get_trials(deepcopy=False)
    states = counts(study)
    finished = states["COMPLETE"] + states["PRUNED"]
    best = best_trial(study)
    gate = gate_of(tuning, best)
    record: dict[str, Any] = {
        "study": study.study_name,
        "storage": masked(storage),
        "metric": tuning.metric,
        "direction": tuning.direction,
        "folds": tuning.spec.folds,
        "trials_target": n,
        "counts": {s.name: states[s.name] for s in TrialState},
        "pruned_share": round(states["PRUNED"] / finished, 4) if finished else None,
        "median_duration_s": {
            "complete": median_s(trials, TrialState.COMPLETE),
            "pruned": median_s(trials, TrialState.PRUNED),
        },
        "best": None,
        "updated": datetime.now().isoformat(timespec="seconds"),
    }
    if best is not None:
        record["best"] = {
            "number": best.number,
            "value": round(best.value, 6),
            "params": best.params,
            "fold_values": best.user_attrs.get("fold_values"),
            "run_dir": best.user_attrs.get("run_dir"),
            "gate": gate.to_dict() if gate else None,
            "config": str(tuning.out / "best.yaml"),
            "train_command": f"python scripts/train.py --config {tuning.out / 'best.yaml'}",
        }
    return record


def write_best(tuning: Tuning, best: FrozenTrial) -> None:
    values = train_values(tuning.params, best.params)
    config = tuning.best_config(values)
    head = (
        f"# The best trial ({best.number}, {tuning.metric} {best.value:.6g}) of study "
        f"{tuning.out}: train it with\n#   python scripts/train.py --config {tuning.out / 'best.yaml'}\n"
    )
    atomic_write(tuning.out / "best.yaml", head + yaml.safe_dump(config, sort_keys=False))


def plot(vis: Any, name: str, study: optuna.Study, metric: str) -> Any:
    """One Optuna figure, its values named after the metric; importances by fANOVA (seeded)."""
    kwargs: dict[str, Any] = {"target_name": metric}
    if name == "param_importances.png":
        kwargs["evaluator"] = optuna.importance.FanovaImportanceEvaluator(seed=0)
    with warnings.catch_warnings():  # e.g. "importances will be equal" on a few trials
        warnings.simplefilter("ignore")
        ax = getattr(vis, FIGURES[name])(study, **kwargs)
    fig = np.ravel(ax)[0].figure
    if name == "parallel_coordinate.png":  # one axis per parameter: give them room
        fig.set_size_inches(max(8.0, 1.4 * (len(study.best_params) + 1)), 5.5)
    return fig


def write_figures(study: optuna.Study, out: Path, metric: str) -> list[str]:
    """The three figures; returns why any was skipped."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as vis

    complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    if complete < MIN_COMPLETE:
        return [f"figures skipped: {complete} complete trial(s), they need {MIN_COMPLETE}"]
    skipped = []
    for name in FIGURES:
        try:
            fig = plot(vis, name, study, metric)
        except Exception as exc:  # a figure must never stop the study
            skipped.append(f"{name} skipped: {' '.join(str(exc).split())}")
            continue
        tmp = out / f".{name}.{os.getpid()}.tmp.png"
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
        tmp.replace(out / name)
        plt.close(fig)
    return skipped


def write_outputs(
    tuning: Tuning, study: optuna.Study, storage: str, n: int, figures: bool = True
) -> tuple[dict[str, Any], list[str]]:
    """Rewrite the study folder's files; the study.json record and any figure skipped."""
    trials = study.get_trials(deepcopy=False)
    atomic_write(tuning.out / "trials.csv", trial_rows(tuning, trials))
    best = best_trial(study)
    if best is not None:
        write_best(tuning, best)
    record = summary(tuning, study, storage, n)
    atomic_write(tuning.out / "study.json", json.dumps(record, indent=2) + "\n")
    skipped = write_figures(study, tuning.out, tuning.metric) if figures else []
    return record, skipped
