"""tune.py's work: a hyperparameter search with Optuna over train.py runs.

Each trial is a normal train.py run under ``<out>/trials/<number>`` (or one per fold under
``<out>/trials/<number>/fold<k>``), scored by the objective metric of its best epoch on val;
the test split is never read. Workers started with the same ``--storage`` and ``--study``
share the study; a worker killed mid-trial leaves that trial FAIL and the next run replaces it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import optuna
from tqdm.auto import tqdm

from mlcycle.core.errors import UserError
from mlcycle.selection.executors import open_executor
from mlcycle.selection.tune import study as studies
from mlcycle.selection.tune.outputs import write_outputs
from mlcycle.selection.tune.remote import run_on
from mlcycle.selection.tune.setup import Tuning
from mlcycle.selection.tune.spec import TuneSpec
from mlcycle.selection.tune.trial import TrialFailed, TrialRunner

MAX_FAILED_IN_A_ROW = 3


class Worker:
    """This process's share of the study: run trials until the study has ``n`` done."""

    def __init__(
        self, tuning: Tuning, study: optuna.Study, storage: str, n: int, deadline: float | None
    ) -> None:
        self.tuning, self.study, self.storage = tuning, study, storage
        self.n, self.deadline = n, deadline
        self.failed_in_a_row = 0
        self.bar = tqdm(
            total=n, initial=min(studies.done(study), n), desc=f"tune {study.study_name}",
            unit="trial", file=sys.stderr, dynamic_ncols=True,
        )  # fmt: skip

    def run(self, runner: TrialRunner) -> None:
        if not studies.wait_for_slot(self.study, self.n, self.deadline):
            return
        remaining = None if self.deadline is None else max(0.0, self.deadline - time.time())
        self.study.optimize(
            runner,
            timeout=remaining,
            catch=(TrialFailed,),
            callbacks=[optuna.study.MaxTrialsCallback(self.n, states=studies.DONE), self.after],
        )

    def after(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """After each of this worker's trials: the line, the files, and whether to go on."""
        self.report(study, trial)
        if not studies.wait_for_slot(study, self.n, self.deadline):
            study.stop()

    def report(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """A finished trial's line and the study's files; stop after too many failures."""
        tqdm.write(self.line(trial), file=sys.stderr)
        record, _ = write_outputs(self.tuning, study, self.storage, self.n)
        self.bar.n = min(studies.done(study), self.n)
        best = record["best"]
        if best:
            self.bar.set_postfix_str(
                f"best {self.tuning.metric} {best['value']:.4f} (#{best['number']})"
            )
        self.bar.refresh()
        error = str(trial.user_attrs.get("error", ""))
        failed = trial.state == optuna.trial.TrialState.FAIL and not error.startswith("not run")
        self.failed_in_a_row = self.failed_in_a_row + 1 if failed else 0
        if self.failed_in_a_row >= MAX_FAILED_IN_A_ROW:
            raise UserError(
                f"{MAX_FAILED_IN_A_ROW} trials in a row failed; the last: {error} "
                f"({trial.user_attrs.get('run_dir')}/error.txt)"
            )

    def line(self, trial: optuna.trial.FrozenTrial) -> str:
        if trial.state == optuna.trial.TrialState.FAIL:
            return f"trial {trial.number}: failed ({trial.user_attrs.get('error', 'see its train.log')})"
        took = f"{trial.duration.total_seconds():.1f} s" if trial.duration else "-"
        value = "-" if trial.value is None else f"{trial.value:.4f}"
        return f"trial {trial.number}: {self.outcome(trial)}, {self.tuning.metric} {value} ({took})"

    def outcome(self, trial: optuna.trial.FrozenTrial) -> str:
        """``complete``, or where it was pruned: after an epoch of the first run, or a fold."""
        if trial.state != optuna.trial.TrialState.PRUNED or trial.last_step is None:
            return trial.state.name.lower()
        after = trial.last_step - self.tuning.last_epoch_step
        if after > 0:
            return f"pruned after fold {after + 1} of {self.tuning.spec.folds}"
        return f"pruned after epoch {trial.last_step + 1}"


def check_folder(tuning: Tuning, study: optuna.Study) -> None:
    """A new study refuses a folder that holds another study's trials."""
    trials = tuning.out / "trials"
    if not study.trials and trials.is_dir() and any(trials.iterdir()):
        raise UserError(
            f"'{tuning.out}' holds the trials of another study (not in this storage); choose another --out"
        )


def finish(tuning: Tuning, study: optuna.Study, storage: str, n: int) -> dict[str, Any]:
    record, skipped = write_outputs(tuning, study, storage, n)
    for line in skipped:
        print(line)
    c = record["counts"]
    share = f"{100 * record['pruned_share']:.0f}%" if record["pruned_share"] is not None else "-"
    print(
        f"study {study.study_name}: {c['COMPLETE'] + c['PRUNED']} of {n} trials done "
        f"({c['COMPLETE']} complete, {c['PRUNED']} pruned: {share}), {c['FAIL']} failed; "
        f"{tuning.out / 'study.json'}"
    )
    best = record["best"]
    if best is None:
        raise UserError(f"no trial completed yet ({tuning.out / 'trials.csv'}); nothing to train")
    params = ", ".join(f"{k}={v}" for k, v in best["params"].items())
    print(f"best trial {best['number']}: {tuning.metric} {best['value']:.4f}; {params}")
    print(best["gate"]["line"] if best["gate"] else "no objective set: no gate checked")
    print(f"train it: {best['train_command']}")
    return record


def join(tuning: Tuning, name: str, storage: optuna.storages.RDBStorage) -> optuna.Study:
    """Create the study or join it, and fail the trials of workers that are gone."""
    spec = tuning.spec
    sampler = studies.TrialSeededTPE(spec.sampler["seed"], spec.sampler["startup_trials"])
    pruner = studies.make_pruner(spec.pruner)
    study = studies.open_study(
        name, storage, tuning.direction, sampler, pruner, tuning.fingerprint()
    )
    check_folder(tuning, study)
    failed = studies.fail_orphans(study)
    if failed:
        numbers = ", ".join(map(str, failed))
        print(f"trial(s) {numbers} of a killed worker marked FAIL; new trials take their place")
    return study


def tune(
    spec: TuneSpec,
    name: str,
    out: Path,
    extra: list[str],
    storage: str | None,
    trials: int | None,
    timeout: float | None,
    heartbeat: int,
) -> dict[str, Any]:
    """Join (or create) the study ``name`` and run trials until it has ``trials`` done (the
    spec's when None) or ``timeout`` seconds passed; study.json's record."""
    studies.quiet_optuna()
    n = trials or spec.trials
    executor = open_executor(spec.executor)  # an unreachable --address fails before any work
    # ... and so does an unreachable database server (a SQLite file's folder may be made below)
    remote = storage is not None and not storage.startswith("sqlite")
    shared = studies.open_storage(storage, heartbeat) if remote else None
    tuning = Tuning(spec, out, extra)
    tuning.check_space()
    tuning.prepare()
    url = storage or studies.default_storage(out)
    study = join(tuning, name, shared or studies.open_storage(url, heartbeat))
    print(
        f"tune {name}: {n} trials ({studies.done(study)} done), {len(tuning.params)} parameters, "
        f"{tuning.metric} ({tuning.direction}), {spec.folds} fold(s); test split never read; {out}"
    )
    deadline = None if timeout is None else time.time() + timeout
    worker = Worker(tuning, study, url, n, deadline)
    try:
        if executor.kind == "local":
            worker.run(TrialRunner(tuning, n, pruning=spec.pruner is not None))
        else:
            print(f"trials run as {executor.describe()}")
            run_on(executor, worker, name, heartbeat)
    finally:
        worker.bar.close()
        executor.close()
    return finish(tuning, study, url, n)
