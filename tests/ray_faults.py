"""A Ray worker killed in the middle of a job (compare's candidate-fold, tune's trial), on a
2-node Ray cluster on loopback: while retries are left the job runs again and the leaderboard
equals a local run's; once they are spent (or with none), the job is recorded as failed, naming
the lost worker, and the rest finishes. The worker is killed for real:
:class:`ray_cluster.KillPoint` makes the fit write its pid and wait, and the test SIGKILLs that
pid. Each command runs as a process with a timeout, so a hang fails the test instead of stalling
the suite.

Collected through test_ray_executor.py, which imports these tests and fixtures: both files'
tests share its one cluster (starting one takes half a minute)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_compare_tables import base_config
from test_tables_models import learnable_table

pytest.importorskip("ray", reason="the 'ray' extra is not installed")
from ray_cluster import killing, with_tests_path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COMMAND_S = 240  # the most one command may take here (a hang fails the test)
FAST = ["--trainer.max_epochs=2", "--model.hidden=[16]", "--model.lr=0.02"]
CANDIDATES = [
    {"name": "logistic", "estimator": "linear"},
    {"name": "forest", "estimator": "random_forest", "params": {"n_estimators": 20}},
]


@pytest.fixture(scope="module")
def fault_train(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("table")
    return base_config(folder, learnable_table(folder / "rows.csv", rows=120), "label")


def kill_point(folder: Path, deaths: int, run_dir_name: str | None = None) -> str:
    """The train.py argument that adds :class:`ray_cluster.KillPoint` to a run."""
    options = {"folder": str(folder), "deaths": deaths, "run_dir_name": run_dir_name}
    callback = {"class_path": "ray_cluster.KillPoint", "init_args": options}
    return f"--trainer.callbacks+={json.dumps(callback)}"


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    env = with_tests_path({**os.environ, "MLCYCLE_FIGURES": "inline"})
    env.pop("RAY_ADDRESS", None)
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), *args],
        capture_output=True, text=True, timeout=COMMAND_S, env=env, cwd=ROOT,
    )  # fmt: skip


def board(folder: Path) -> dict[str, dict]:
    rows = json.loads((folder / "out" / "leaderboard.json").read_text())
    rows = rows["rows"] if isinstance(rows, dict) else rows
    return {r["candidate"]: r for r in rows if r.get("kind") != "baseline"}


def fold_records(folder: Path, name: str) -> list[dict]:
    out = folder / "out" / "candidates" / name
    return [json.loads((out / f"fold{k}" / "selection_fold.json").read_text()) for k in (0, 1)]


@pytest.fixture(scope="module")
def fault_local(tmp_path_factory, fault_train) -> dict[str, dict]:
    """The leaderboard rows of compare.py run here (``--executor local``, in this process) on
    :data:`CANDIDATES`: what every Ray compare of test_ray_executor.py must equal."""
    from mlcycle.commands.compare import main

    folder = tmp_path_factory.mktemp("local")
    spec = {"train": [str(fault_train)], "args": FAST, "folds": 2, "candidates": CANDIDATES}
    (folder / "cmp.yaml").write_text(yaml.safe_dump(spec))
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(io.StringIO()):
        patch.setenv("MLCYCLE_FIGURES", "inline")
        patch.chdir(ROOT)
        main(["--config", str(folder / "cmp.yaml"), "--out", str(folder / "out")])
    return board(folder)


@pytest.mark.slow
def test_a_killed_fold_is_run_again_while_retries_last_then_failed(cluster, fault_train, fault_local, tmp_path):  # fmt: skip
    """One compare with --retries 1 (each fold may run twice): one of logistic's folds is killed
    once, runs again and finishes, so logistic's mean equals the local run's; doomed's fold1 is
    killed on both tries and is recorded failed, naming the worker lost; forest finishes."""
    once, twice = tmp_path / "once", tmp_path / "twice"
    once.mkdir()
    twice.mkdir()
    logistic = {**CANDIDATES[0], "args": [kill_point(once, 1)]}
    doomed = {"name": "doomed", "estimator": "linear", "args": [kill_point(twice, 2, "fold1")]}
    spec = {"train": [str(fault_train)], "args": FAST, "folds": 2, "candidates": [logistic, CANDIDATES[1], doomed]}  # fmt: skip
    (tmp_path / "cmp.yaml").write_text(yaml.safe_dump(spec))
    options = ["--executor", "ray", "--address", cluster, "--retries", "1"]
    with killing(once) as killed_once, killing(twice) as killed_twice:
        done = run("compare.py", "--config", str(tmp_path / "cmp.yaml"), "--out", str(tmp_path / "out"), *options)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]  # as any compare with a failed candidate
    assert len(killed_once) == 1 and len(killed_twice) == 2  # Ray workers killed mid-fold
    remote = board(tmp_path)
    assert {n: remote[n]["mean"] for n in fault_local} == pytest.approx(
        {n: r["mean"] for n, r in fault_local.items()}, abs=1e-6
    )
    assert all(remote[n]["mean"] is not None for n in fault_local)
    for name in fault_local:
        assert [r["status"] for r in fold_records(tmp_path, name)] == ["finished", "finished"]
    failed = remote["doomed"]
    assert failed["mean"] is None and "Ray worker died (1 retries)" in failed["error"], failed
    records = fold_records(tmp_path, "doomed")
    assert [r["status"] for r in records] == ["finished", "failed"], records
    lost, last = records[1], killed_twice[-1]  # the worker of its last try, named
    assert "Ray worker died" in lost["error"] and lost["worker"].endswith(f":{last}"), records
    assert f":{last})" in lost["error"] and f":{last})" in failed["error"]
    assert "doomed fold 1 failed: its Ray worker died" in done.stderr, done.stderr[-3000:]


@pytest.mark.slow
def test_a_killed_trial_is_failed_in_the_study_and_the_study_goes_on(
    cluster, fault_train, tmp_path
):
    deaths = tmp_path / "deaths"
    deaths.mkdir()
    spec = {
        "train": [str(fault_train)], "args": ["--trainer.max_epochs=2", kill_point(deaths, 1)],
        "trials": 2, "sampler": {"seed": 1, "startup_trials": 2}, "pruner": False,
        "space": {"model.init_args.lr": {"low": 1.0e-3, "high": 3.0e-2, "log": True}},
    }  # fmt: skip
    (tmp_path / "tune.yaml").write_text(yaml.safe_dump(spec))
    options = ["--executor", "ray", "--address", cluster, "--retries", "0"]
    with killing(deaths) as killed:
        done = run("tune.py", "--config", str(tmp_path / "tune.yaml"), "--out", str(tmp_path / "study"), *options)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(killed) == 1
    with (tmp_path / "study" / "trials.csv").open() as rows:
        trials = list(csv.DictReader(rows))
    states = sorted(t["state"] for t in trials)
    assert states == ["COMPLETE", "COMPLETE", "FAIL"], trials
    lost = next(t for t in trials if t["state"] == "FAIL")  # the killed worker, named
    assert lost["worker"].endswith(f":{killed[0]}") and "killed" in lost["error"], lost
    assert "Ray worker died" in done.stdout, done.stdout
    study = json.loads((tmp_path / "study" / "study.json").read_text())
    assert study["counts"]["FAIL"] == 1 and study["counts"]["COMPLETE"] == 2
