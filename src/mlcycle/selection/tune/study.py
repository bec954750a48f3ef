"""The Optuna study several workers share: storage, sampler, pruner, and who runs what.

Any number of workers (processes, on one machine or many) open the same study in the same
storage. A worker records itself on each trial (``worker`` = host:pid) and the storage keeps
a heartbeat per running trial: on start and between trials, a RUNNING trial whose worker is
gone (same host: its process is dead; any host: its heartbeat is stale) is marked FAIL, so a
killed trial is never counted and the next trial takes its place.
"""

from __future__ import annotations

import json
import os
import socket
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.exc import IntegrityError, ProgrammingError

from mlcycle.core.errors import UserError

DONE = (TrialState.COMPLETE, TrialState.PRUNED)
POLL_S = 2.0  # how often a worker waiting on others' last trials looks again


def quiet_optuna() -> None:
    """tune.py prints its own lines; heartbeats and the matplotlib plots are "experimental"."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def default_storage(out: Path) -> str:
    return f"sqlite:///{(out / 'study.db').resolve()}"


def open_storage(url: str, heartbeat_s: int) -> optuna.storages.RDBStorage:
    """An RDB storage with heartbeats; SQLite waits on a busy database instead of failing, a
    database server that does not answer fails in seconds (``connect_timeout``)."""
    sqlite = url.startswith("sqlite")
    server = url.startswith(("postgresql", "mysql", "mariadb"))
    kwargs: dict[str, Any] = {"connect_args": {"timeout": 60}} if sqlite else {}
    if server:
        kwargs = {"connect_args": {"connect_timeout": 5}, "pool_pre_ping": True}
    for attempt in range(3):  # workers starting together race to create the tables
        try:
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs=kwargs,
                heartbeat_interval=heartbeat_s,
                grace_period=4 * heartbeat_s,
            )
        except Exception as exc:
            raced = sqlite or isinstance(exc, IntegrityError | ProgrammingError)
            if attempt == 2 or not raced:  # a server that does not answer: at once
                raise UserError(
                    f"--storage {masked(url)}: {' '.join(str(exc).split())[:300]}"
                ) from exc
            time.sleep(1 + attempt)
    raise AssertionError("unreachable")


def masked(url: str) -> str:
    """``url`` without its password (study.json and messages show it)."""
    head, sep, tail = url.partition("://")
    if sep and "@" in tail:
        creds, _, host = tail.rpartition("@")
        return f"{head}://{creds.split(':')[0]}:***@{host}"
    return url


class TrialSeededTPE(optuna.samplers.TPESampler):
    """TPE whose random draws are seeded by ``seed + trial number``: one worker reproduces a
    study exactly, and workers started together do not draw the same parameters."""

    def __init__(self, seed: int, startup_trials: int) -> None:
        super().__init__(seed=seed, n_startup_trials=startup_trials, constant_liar=True)
        self.base_seed = seed

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        seed = (self.base_seed + trial.number) % 2**32
        self._rng.rng.seed(seed)
        self._random_sampler._rng.rng.seed(seed)
        super().before_trial(study, trial)


def make_pruner(settings: dict[str, Any] | None) -> optuna.pruners.BasePruner:
    if settings is None:
        return optuna.pruners.NopPruner()
    return optuna.pruners.PercentilePruner(
        settings["percentile"],
        n_startup_trials=settings["startup_trials"],
        n_warmup_steps=settings["warmup_epochs"],
    )


def open_study(
    name: str, storage: Any, direction: str, sampler: Any, pruner: Any, fingerprint: dict
) -> optuna.Study:
    """Create the study or join it; a study made for another search is refused."""
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        direction="maximize" if direction == "max" else "minimize",
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )
    recorded = study.user_attrs.get("tune")
    if recorded is None:
        study.set_user_attr("tune", fingerprint)
    elif json.dumps(recorded, sort_keys=True) != json.dumps(fingerprint, sort_keys=True):
        changed = sorted(k for k in fingerprint if recorded.get(k) != fingerprint[k])
        raise UserError(
            f"study '{name}' in this storage was made for another search ({', '.join(changed) or 'space'} "
            "changed); pass another --study, or --out for a new study folder"
        )
    return study


def process_gone(pid: int) -> bool:
    """Whether process ``pid`` on this host has ended (a zombie has ended too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def fail_orphans(study: optuna.Study) -> list[int]:
    """Mark FAIL the RUNNING trials whose worker is gone; their numbers.

    Called between trials, never during one of this worker's: a RUNNING trial that names this
    very process is left over from an earlier process with the same pid."""
    host = socket.gethostname()
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker_host, _, pid = str(trial.user_attrs.get("worker", "")).rpartition(":")
        if worker_host != host or not pid.isdigit():
            continue
        if int(pid) == os.getpid() or process_gone(int(pid)):
            try:  # the note first: a finished trial takes none
                study._storage.set_trial_user_attr(
                    trial._trial_id, "error", "its worker was killed"
                )
                study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # it finished, or another worker failed it first
            failed.append(trial.number)
    running = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    with warnings.catch_warnings():  # "experimental" since Optuna 2.9
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # any host: heartbeat older than grace period
    stale = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    return sorted(failed + [t.number for t in stale if t.number in running])


def counts(study: optuna.Study) -> Counter:
    """Trials by state name (COMPLETE, PRUNED, FAIL, RUNNING, WAITING)."""
    return Counter(t.state.name for t in study.get_trials(deepcopy=False))


def done(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=DONE))


def wait_for_slot(study: optuna.Study, n: int, deadline: float | None) -> bool:
    """True when the study needs another trial from this worker; False when ``n`` trials are
    done or time is up. While the last trials run in other workers, wait: one of them may
    die, and its trial must be run again."""
    while True:
        fail_orphans(study)
        states = counts(study)
        finished = states["COMPLETE"] + states["PRUNED"]
        if finished >= n:
            return False
        if finished + states["RUNNING"] < n:
            return True
        if deadline is not None and time.time() >= deadline:
            return False
        time.sleep(POLL_S)


def surplus(study: optuna.Study, trial: optuna.Trial, n: int) -> bool:
    """Whether ``trial`` is one too many: two workers that asked for the last trial at the same
    moment both got one; the lower number runs, the other gives way."""
    others = study.get_trials(deepcopy=False, states=(*DONE, TrialState.RUNNING))
    ahead = [t for t in others if t.state in DONE or t.number < trial.number]
    return len(ahead) >= n
