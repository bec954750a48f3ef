"""A Ray worker killed in the middle of a job (compare's candidate-fold, tune's trial), on a
2-node Ray cluster on loopback: with retries the job runs again and the leaderboard equals a
local run's; without, the job is recorded as failed, naming the lost worker, and the rest
finishes. The worker is killed for real: :class:`ray_cluster.KillPoint` makes the fit write
its pid and wait, and the test SIGKILLs that pid. Each command runs as a process with a
timeout, so a hang fails the test instead of stalling the suite.

Collected through test_ray_executor.py, which imports these tests and fixtures: both files'
tests share its one cluster (starting one takes half a minute)."""

from __future__ import annotations

import csv
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


@pytest.fixture(scope="module")
def fault_train(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("table")
    return base_config(folder, learnable_table(folder / "rows.csv", rows=120), "label")


def kill_point(folder: Path, deaths: int) -> str:
    """The train.py argument that adds :class:`ray_cluster.KillPoint` to a run."""
    callback = {"class_path": "ray_cluster.KillPoint", "init_args": {"folder": str(folder), "deaths": deaths}}  # fmt: skip
    return f"--trainer.callbacks+={json.dumps(callback)}"


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    env = with_tests_path({**os.environ, "MLCYCLE_FIGURES": "inline"})
    env.pop("RAY_ADDRESS", None)
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), *args],
        capture_output=True, text=True, timeout=COMMAND_S, env=env, cwd=ROOT,
    )  # fmt: skip


def compare(folder: Path, train: Path, deaths: int, *options: str) -> subprocess.CompletedProcess:
    """compare.py on two candidates × 2 folds; ``deaths`` of logistic's folds wait to be killed."""
    folder.mkdir()
    (folder / "deaths").mkdir()
    killed = {"name": "logistic", "estimator": "linear", "args": [kill_point(folder / "deaths", deaths)]}  # fmt: skip
    forest = {"name": "forest", "estimator": "random_forest", "params": {"n_estimators": 20}}
    spec = {"train": [str(train)], "args": FAST, "folds": 2, "candidates": [killed, forest]}
    (folder / "cmp.yaml").write_text(yaml.safe_dump(spec))
    return run("compare.py", "--config", str(folder / "cmp.yaml"), "--out", str(folder / "out"), *options)  # fmt: skip


def board(folder: Path) -> dict[str, dict]:
    rows = json.loads((folder / "out" / "leaderboard.json").read_text())
    rows = rows["rows"] if isinstance(rows, dict) else rows
    return {r["candidate"]: r for r in rows if r.get("kind") != "baseline"}


def fold_records(folder: Path, name: str) -> list[dict]:
    out = folder / "out" / "candidates" / name
    return [json.loads((out / f"fold{k}" / "selection_fold.json").read_text()) for k in (0, 1)]


@pytest.fixture(scope="module")
def fault_local(tmp_path_factory, fault_train) -> dict[str, dict]:
    folder = tmp_path_factory.mktemp("local") / "cmp"
    done = compare(folder, fault_train, 0)
    assert done.returncode == 0, done.stderr[-3000:]
    return board(folder)


@pytest.mark.slow
def test_a_killed_fold_is_run_again_and_the_leaderboard_equals_a_local_run(cluster, fault_train, fault_local, tmp_path):  # fmt: skip
    folder = tmp_path / "ray"
    with killing(folder / "deaths") as killed:
        done = compare(folder, fault_train, 1, "--executor", "ray", "--address", cluster, "--retries", "1")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(killed) == 1  # one Ray worker was killed in the middle of a fold
    remote = board(folder)
    assert {n: r["mean"] for n, r in remote.items()} == pytest.approx(
        {n: r["mean"] for n, r in fault_local.items()}, abs=1e-6
    )
    assert all(r["mean"] is not None for r in remote.values())
    for name in ("logistic", "forest"):
        assert [r["status"] for r in fold_records(folder, name)] == ["finished", "finished"]


@pytest.mark.slow
def test_a_killed_fold_without_retries_is_failed_and_the_others_finish(cluster, fault_train, fault_local, tmp_path):  # fmt: skip
    folder = tmp_path / "ray"
    with killing(folder / "deaths") as killed:
        done = compare(folder, fault_train, 1, "--executor", "ray", "--address", cluster, "--retries", "0")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]  # as any compare with a failed candidate
    assert len(killed) == 1
    remote = board(folder)
    assert remote["forest"]["mean"] == pytest.approx(fault_local["forest"]["mean"], abs=1e-6)
    failed = remote["logistic"]
    assert failed["mean"] is None and "Ray worker died" in failed["error"], failed
    records = fold_records(folder, "logistic")
    lost = [r for r in records if r["status"] == "failed"]
    assert len(lost) == 1 and "Ray worker died" in lost[0]["error"], records
    assert lost[0]["worker"].endswith(f":{killed[0]}")  # the worker lost, named
    assert f":{killed[0]})" in lost[0]["error"] and f":{killed[0]})" in failed["error"]
    assert "logistic fold" in done.stderr and "failed" in done.stderr


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
