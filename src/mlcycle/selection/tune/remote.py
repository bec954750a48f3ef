"""tune.py's trials as Ray tasks (``--executor ray``): each task joins the study through its
storage URL and runs one trial; this process hands out the tasks, prints each trial's line and
writes the study's files as they finish.

The study lives in the storage, as with several local workers: a task records itself on its
trial (``worker`` = host:pid) and beats its heartbeat there, so a trial whose Ray worker was
killed is marked FAIL (dead process on this host, or a stale heartbeat) and a new trial takes
its place; Ray also runs a task whose worker died again (``--retries``). Every node needs the
storage (a database server, or SQLite on a shared filesystem) and the study folder.
"""

from __future__ import annotations

import time
from typing import Any

import optuna

from mlcycle.core.errors import UserError
from mlcycle.selection.executors import Executor
from mlcycle.selection.tune import study as studies
from mlcycle.selection.tune.setup import Tuning
from mlcycle.selection.tune.trial import TrialFailed, TrialRunner

MAX_ROUNDS_WITHOUT_PROGRESS = 3


class TrialJobs:
    """The trials still to run as an executor's jobs (a job is a slot number)."""

    def __init__(self, tuning: Tuning, name: str, url: str, n: int, heartbeat: int) -> None:
        self.tuning, self.name, self.url, self.n, self.heartbeat = tuning, name, url, n, heartbeat

    def settle(self, job: int) -> dict[str, Any] | None:
        return None

    def fit(self, job: int) -> dict[str, Any]:
        """On a Ray worker: join the study and run one trial; its number."""
        studies.quiet_optuna()
        spec = self.tuning.spec
        study = optuna.load_study(
            study_name=self.name,
            storage=studies.open_storage(self.url, self.heartbeat),
            sampler=studies.TrialSeededTPE(spec.sampler["seed"], spec.sampler["startup_trials"]),
            pruner=studies.make_pruner(spec.pruner),
        )
        if not studies.wait_for_slot(study, self.n, None):
            return {"number": None, "error": None}  # the others finished the study
        numbers: list[int] = []
        study.optimize(
            TrialRunner(self.tuning, self.n, pruning=spec.pruner is not None),
            n_trials=1,
            catch=(TrialFailed,),
            callbacks=[lambda _, trial: numbers.append(trial.number)],
        )
        return {"number": numbers[0] if numbers else None, "error": None}

    def failed(self, job: int, error: str) -> dict[str, Any]:
        return {"number": None, "error": error}

    def skip(self, job: int, why: str) -> dict[str, Any]:
        return {"number": None, "error": None}


def run_on(executor: Executor, worker: Any, name: str, heartbeat: int) -> None:
    """Run trials as ``executor``'s tasks until the study has ``worker.n`` done (or time is up);
    each finished trial reported by ``worker`` as a local worker reports its own."""
    study, n = worker.study, worker.n
    deadline = None if worker.deadline is None else time.monotonic() + worker.deadline - time.time()
    idle_rounds = 0
    while studies.wait_for_slot(study, n, worker.deadline):
        states = studies.counts(study)
        slots = n - states["COMPLETE"] - states["PRUNED"] - states["RUNNING"]
        before = studies.done(study)
        jobs = TrialJobs(worker.tuning, name, worker.storage, n, heartbeat)
        for _, record in executor.map(list(range(slots)), jobs, deadline):
            if record["error"]:
                print(f"a trial's Ray task failed: {record['error']}")
            if record["number"] is not None:
                worker.report(study, study.get_trials(deepcopy=False)[record["number"]])
        idle_rounds = 0 if studies.done(study) > before else idle_rounds + 1
        if idle_rounds >= MAX_ROUNDS_WITHOUT_PROGRESS:
            raise UserError(
                f"{MAX_ROUNDS_WITHOUT_PROGRESS} rounds of Ray tasks finished no trial; see the "
                f"trials' error.txt under {worker.tuning.out / 'trials'}"
            )
