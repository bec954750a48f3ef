"""tune.py: real Optuna studies of real train.py runs on tiny generated images."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from conftest import write_folder

from mlcycle.commands.tune import main
from mlcycle.core.errors import UserError
from mlcycle.selection.tune.setup import Tuning
from mlcycle.selection.tune.space import parse_space
from mlcycle.selection.tune.spec import load_tune_spec
from mlcycle.selection.tune.trial import TrialRunner

ROOT = Path(__file__).resolve().parents[1]
TRAIN_ARGS = [
    "--model.arch=small_cnn",
    "--data.image_size=16",
    "--data.batch_size=8",
    "--data.num_workers=0",
    "--trainer.max_epochs=2",
    "--trainer.limit_train_batches=2",
]
SPACE = {
    "model.lr": {"low": 1.0e-4, "high": 1.0e-2, "log": True},
    "model.optimizer": {"choices": ["AdamW", "SGD"]},
    "data.train_transforms": {
        "choices": {"none": [], "flip": [{"name": "HorizontalFlip", "p": 0.5}]}
    },
}


def tune_yaml(folder: Path, **changes) -> Path:
    spec = {
        "train": ["configs/image_folder.yaml"],
        "args": TRAIN_ARGS,
        "trials": 3,
        "objective": {"metric": "val/f1", "min": 0.3},
        "sampler": {"seed": 1, "startup_trials": 2},
        "pruner": {"startup_trials": 1, "warmup_epochs": 0},
        "space": SPACE,
        **changes,
    }
    path = folder / "tune.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    return write_folder(tmp_path_factory.mktemp("tune") / "images")


def counts(out: Path) -> dict[str, int]:
    return json.loads((out / "study.json").read_text())["counts"]


def test_study_writes_a_best_config_train_py_accepts(images, tmp_path, capsys):
    from mlcycle.commands.train import main as train

    out = tmp_path / "study"
    record = main(
        ["--config", str(tune_yaml(tmp_path)), "--out", str(out), f"--data.root={images}"]
    )
    printed = capsys.readouterr().out
    assert f"train it: python scripts/train.py --config {out / 'best.yaml'}" in printed
    assert "objective PASS" in printed or "objective FAIL" in printed
    c = counts(out)
    assert c["COMPLETE"] + c["PRUNED"] == 3 and c["COMPLETE"] >= 1
    with (out / "trials.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 and {r["data.train_transforms"] for r in rows} <= {"none", "flip"}
    assert record["best"]["number"] in {int(r["number"]) for r in rows if r["state"] == "COMPLETE"}
    best = yaml.safe_load((out / "best.yaml").read_text())
    assert best["run_dir"] is None and best["ckpt_path"] is None
    assert best["objective"]["metric"] == "val/f1" and best["objective"]["min"] == 0.3
    params = record["best"]["params"]
    assert best["model"]["init_args"]["lr"] == pytest.approx(params["model.lr"])
    chosen = {"none": [], "flip": [{"name": "HorizontalFlip", "p": 0.5}]}
    assert best["data"]["init_args"]["train_transforms"] == chosen[params["data.train_transforms"]]
    # The test split is never read: no evaluation, no ledger, no test metrics in any run.
    assert not list(out.rglob("test_ledger.jsonl")) and not list(out.rglob("eval_*.json"))
    for metrics in out.glob("trials/*/metrics.json"):
        assert not [k for k in json.loads(metrics.read_text()) if k.startswith("test/")]
    run = train(
        [
            "--config",
            str(out / "best.yaml"),
            "--trainer.max_epochs=1",
            f"--run_dir={tmp_path / 'final'}",
        ]
    )
    assert json.loads((run / "metrics.json").read_text())["status"] == "finished"


class PruneFrom(optuna.pruners.BasePruner):
    """Prunes every trial once it has reported step ``step``: the pruning paths, deterministic."""

    def __init__(self, step: int) -> None:
        self.step = step

    def prune(self, study, trial) -> bool:
        return trial.last_step is not None and trial.last_step >= self.step


def one_trial(images: Path, folder: Path, pruner, folds: int) -> optuna.trial.FrozenTrial:
    spec = load_tune_spec(tune_yaml(folder, folds=folds))
    tuning = Tuning(spec, folder / "study", [f"--data.root={images}"])
    tuning.prepare()
    study = optuna.create_study(direction="maximize", pruner=pruner)
    study.optimize(TrialRunner(tuning, 1, pruning=True), n_trials=1)
    return study.trials[0]


def test_the_lightning_callback_prunes_after_an_epoch(images, tmp_path):
    trial = one_trial(images, tmp_path, PruneFrom(0), folds=1)
    assert trial.state.name == "PRUNED" and trial.last_step == 0
    metrics = json.loads((tmp_path / "study/trials/0/metrics.json").read_text())
    assert metrics["status"] == "interrupted"  # stopped after its first epoch of two


def test_a_later_fold_prunes_on_the_running_mean(images, tmp_path):
    trial = one_trial(images, tmp_path, PruneFrom(3), folds=2)  # steps 0, 1: epochs; 3: fold 2
    assert trial.state.name == "PRUNED" and trial.last_step == 3
    assert len(trial.user_attrs["fold_values"]) == 2
    assert trial.intermediate_values[3] == pytest.approx(sum(trial.user_attrs["fold_values"]) / 2)
    for fold in (0, 1):
        run = tmp_path / f"study/trials/0/fold{fold}"
        assert json.loads((run / "metrics.json").read_text())["status"] == "finished"
        assert f"study/folds/fold{fold}.csv" in (run / "config.yaml").read_text()


def test_a_bad_space_key_fails_in_one_line_before_any_trial(images, tmp_path, capsys):
    space = {**SPACE, "model.lrr": {"low": 0.1, "high": 0.2}}
    config = tune_yaml(tmp_path, space=space)
    with pytest.raises(SystemExit) as exc:
        main(["--config", str(config), "--out", str(tmp_path / "study"), f"--data.root={images}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1
    assert "model.lrr" in err[0] and "did you mean 'model.lr'" in err[0]
    assert not (tmp_path / "study").exists()


@pytest.mark.parametrize("command", ["tune", "compare"])
def test_a_single_dash_option_is_refused_not_passed_to_train_py(command, tmp_path, capsys):
    from importlib import import_module

    run = import_module(f"mlcycle.commands.{command}").main
    with pytest.raises(SystemExit) as exc:
        run(["--config", str(tmp_path / "x.yaml"), "--data.root=x", "-q"])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2
    assert err == f"error: unknown option '-q' (see mlcycle {command} --help)"


@pytest.mark.parametrize(
    "body, message",
    [
        ({"low": 0.1, "hihg": 0.2}, "unknown field 'hihg'"),
        ({"low": 0.2, "high": 0.1}, "must be below high"),
        ({"choices": []}, "non-empty list"),
        ({"choices": [[1], [2]]}, "mapping name -> value"),
        ({"low": 0, "high": 1, "log": True}, "log scale needs low > 0"),
    ],
)
def test_space_errors_name_the_key(body, message):
    with pytest.raises(UserError, match=message) as exc:
        parse_space({"model.lr": body}, "t.yaml")
    assert "space.model.lr" in str(exc.value)


def tune_process(
    config: Path, out: Path, images: Path, trials: int, *extra: str
) -> subprocess.Popen:
    """A worker in its own process; what it prints goes to ``<out>.log``."""
    command = [sys.executable, str(ROOT / "scripts/tune.py"), "--config", str(config)]
    command += ["--out", str(out), "--trials", str(trials), f"--data.root={images}", *extra]
    log = out.with_suffix(".log").open("w")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def load(out: Path) -> optuna.Study:
    return optuna.load_study(study_name="tune", storage=f"sqlite:///{out / 'study.db'}")


def first_running(worker: subprocess.Popen, out: Path) -> int:
    """The number of the first trial the worker is training (its train.log written)."""
    deadline = time.time() + 120
    while time.time() < deadline and worker.poll() is None:
        time.sleep(0.1)
        if not (out / "study.db").is_file():
            continue
        try:
            running = load(out).get_trials(states=(optuna.trial.TrialState.RUNNING,))
        except Exception:  # the study is not created yet
            continue
        if running and (out / "trials" / str(running[0].number) / "train.log").is_file():
            return running[0].number
    raise AssertionError(f"the worker ran no trial: {out.with_suffix('.log').read_text()}")


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")
def test_orphans_of_dead_workers_are_failed_and_live_ones_kept(tmp_path):
    from mlcycle.selection.executors import worker_id
    from mlcycle.selection.tune.study import fail_orphans

    url = f"sqlite:///{tmp_path / 'study.db'}"
    storage = optuna.storages.RDBStorage(url, heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(storage=storage)
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    host = worker_id().rpartition(":")[0]
    workers = {
        "dead here": f"{host}:{finished.stdout.strip()}",
        "alive here": f"{host}:{os.getppid()}",
        "silent elsewhere": "elsewhere:1",
        "beating elsewhere": "elsewhere:2",
    }
    trials = {}
    for name, worker in workers.items():
        trials[name] = study.ask()
        trials[name].set_user_attr("worker", worker)
    storage.record_heartbeat(trials["silent elsewhere"]._trial_id)
    time.sleep(2.5)  # past the grace period of the silent one
    storage.record_heartbeat(trials["beating elsewhere"]._trial_id)
    assert fail_orphans(study) == sorted(
        trials[k].number for k in ("dead here", "silent elsewhere")
    )
    states = {name: study.trials[t.number].state.name for name, t in trials.items()}
    assert states == {
        "dead here": "FAIL",  # the pid check's
        "alive here": "RUNNING",
        "silent elsewhere": "FAIL",  # the heartbeat's
        "beating elsewhere": "RUNNING",
    }


@pytest.mark.slow
def test_a_killed_worker_loses_no_trial_and_counts_none_twice(images, tmp_path, capsys):
    config, out = tune_yaml(tmp_path, pruner=False), tmp_path / "study"
    worker = tune_process(config, out, images, 3, "--trainer.max_epochs=8")  # time to kill it
    killed = first_running(worker, out)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert load(out).trials[killed].state.name == "RUNNING"  # nobody told the storage
    # The restart (in this process: it saves a start-up) fails the orphan and runs one more.
    main(["--config", str(config), "--out", str(out), "--trials=3", f"--data.root={images}"])
    assert (
        f"trial(s) {killed} of a killed worker marked FAIL; new trials take their place"
        in capsys.readouterr().out
    )
    trials = load(out).trials
    assert trials[killed].state.name == "FAIL"
    assert trials[killed].user_attrs["error"] == "its worker was killed"
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in trials) == 3
    assert len(trials) == 4 and counts(out)["FAIL"] == 1


@pytest.mark.slow
def test_two_workers_share_one_study(images, tmp_path, capsys):
    config, out = tune_yaml(tmp_path), tmp_path / "study"
    other = tune_process(config, out, images, trials=5)
    first_running(other, out)  # this process joins while the other one trains
    main(
        [
            "--config",
            str(config),
            "--out",
            str(out),
            "--trials=5",
            "--timeout=200",
            f"--data.root={images}",
        ]
    )
    assert other.wait(timeout=240) == 0, out.with_suffix(".log").read_text()
    printed = out.with_suffix(".log").read_text()
    for text in (printed, capsys.readouterr().out):
        assert "5 of 5 trials done" in text
    trials = load(out).trials
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in trials) == 5
    assert not [t for t in trials if t.state.name == "RUNNING"]
    assert len({t.user_attrs["worker"] for t in trials}) == 2
    with (out / "trials.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == len(trials)
