"""One trial of a tune study: train.py runs (one, or one per fold) with the sampled values.

The value is the objective metric of the best epoch (metrics.json), or its mean over folds.
The first run reports every epoch to the pruner (Optuna's Lightning callback); each later fold
reports the running mean at step ``last epoch + fold``, so a poor trial stops early there too.
"""

from __future__ import annotations

import json
import math
import signal
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from mlcycle.core.errors import UserError
from mlcycle.selection.executors import worker_id
from mlcycle.selection.runs import error_line, fit_quietly
from mlcycle.selection.tune.setup import Tuning
from mlcycle.selection.tune.study import surplus


class TrialFailed(Exception):
    """A trial that failed on its own (its values, a crash): it is FAIL, the study goes on."""


class StudyError(UserError):
    """A mistake every trial would repeat (the objective metric is never logged): stop."""


def fit_run(args: list[str], run_dir: Path, callbacks: list[Any]) -> dict[str, Any]:
    """Train as train.py does, its printing sent to ``run_dir/train.log``; its metrics.json."""
    fit_quietly(args, run_dir, callbacks)
    return json.loads((run_dir / "metrics.json").read_text())


def mean_metrics(records: list[dict[str, Any]]) -> dict[str, float]:
    """The val metrics (per-class ones too) averaged over folds, for the objective's gate."""
    keys = [k for k, v in records[0].items() if k.startswith("val/") and isinstance(v, int | float)]
    keys = [k for k in keys if all(isinstance(r.get(k), int | float) for r in records)]
    return {k: round(float(np.mean([r[k] for r in records])), 6) for k in keys}


class TrialRunner:
    """The objective function Optuna calls: ``runner(trial) -> value``."""

    def __init__(self, tuning: Tuning, n_trials: int, pruning: bool) -> None:
        self.tuning, self.n_trials, self.pruning = tuning, n_trials, pruning

    def __call__(self, trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", worker_id())
        if surplus(trial.study, trial, self.n_trials):
            message = "not run: the study already had its trials done or running"
            trial.set_user_attr("error", message)
            raise TrialFailed(message)
        stored = {p.key: p.suggest(trial) for p in self.tuning.params}
        values = {p.key: p.value(stored[p.key]) for p in self.tuning.params}
        trial_dir = self.tuning.out / "trials" / str(trial.number)
        trial.set_user_attr("run_dir", str(trial_dir))
        try:
            return self.folds(trial, values, trial_dir)
        except (optuna.TrialPruned, StudyError):
            raise
        except SystemExit as exc:
            if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:  # Lightning's Ctrl-C exit
                signal.signal(signal.SIGINT, signal.default_int_handler)
                raise KeyboardInterrupt from exc  # Optuna marks the trial FAIL, then stops
            line = f"train.py exited with code {exc.code}; see train.log under {trial_dir}"
            trial.set_user_attr("error", line)
            raise TrialFailed(line) from exc
        except Exception as exc:
            line = error_line(exc)
            trial_dir.mkdir(parents=True, exist_ok=True)
            (trial_dir / "error.txt").write_text("".join(traceback.format_exception(exc)))
            trial.set_user_attr("error", line)
            raise TrialFailed(line) from exc

    def folds(self, trial: optuna.Trial, values: dict[str, Any], trial_dir: Path) -> float:
        tuning, metric = self.tuning, self.tuning.metric
        folds = max(1, len(tuning.split_files))
        scores: list[float] = []
        records: list[dict[str, Any]] = []
        for fold in range(folds):
            run_dir = trial_dir if folds == 1 else trial_dir / f"fold{fold}"
            callbacks = []
            if fold == 0 and self.pruning:
                from optuna_integration import PyTorchLightningPruningCallback

                callbacks.append(PyTorchLightningPruningCallback(trial, monitor=metric))
            record = fit_run(tuning.run_args(values, run_dir, fold), run_dir, callbacks)
            records.append(record)
            scores.append(self.value_of(record, run_dir))
            trial.set_user_attr("fold_values", scores)
            if fold > 0 and self.pruning:
                trial.report(float(np.mean(scores)), step=tuning.last_epoch_step + fold)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after fold {fold}")
        trial.set_user_attr("metrics", mean_metrics(records))
        return float(np.mean(scores))

    def value_of(self, record: dict[str, Any], run_dir: Path) -> float:
        metric = self.tuning.metric
        if metric not in record:
            logged = ", ".join(k for k in record if k.startswith("val/") and k.count("/") == 1)
            raise StudyError(
                f"objective metric '{metric}' is not in {run_dir / 'metrics.json'}; logged: {logged}"
            )
        value = float(record[metric])
        if not math.isfinite(value):
            raise TrialFailed(f"{metric} is {value}")
        return value
