"""compare.py with --executor ray on a 2-node Ray cluster on loopback (a head and one worker,
started with ``ray start`` as subprocesses): the same leaderboard and the same trials as a local
run; an unreachable --address is one line, exit 2, fast; and a worker killed mid-job
(tests/ray_faults.py, run here on the same cluster)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import time
from pathlib import Path

import pytest
import yaml
from test_compare_tables import base_config
from test_tables_models import learnable_table

ray = pytest.importorskip("ray", reason="the 'ray' extra is not installed")
from ray_cluster import free_port, ray_cluster  # noqa: E402

# the killed-worker tests, on this module's cluster, and the local leaderboard every Ray
# compare here must equal (tests/ray_faults.py)
from ray_faults import (  # noqa: E402, F401
    CANDIDATES,
    FAST,
    fault_local,
    fault_train,
    test_a_killed_fold_is_run_again_while_retries_last_then_failed,
    test_a_killed_trial_is_failed_in_the_study_and_the_study_goes_on,
)


@pytest.fixture(scope="module")
def cluster():
    """A Ray head and one worker node on loopback; both stopped (by their process) after."""
    with ray_cluster() as address:
        yield address


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    return learnable_table(tmp_path_factory.mktemp("table") / "rows.csv", rows=120)


def compare(folder: Path, train: Path, *options: str) -> tuple[dict, str]:
    from mlcycle.commands.compare import main

    spec = {"train": [str(train)], "args": FAST, "folds": 2, "candidates": CANDIDATES}
    config = folder / "cmp.yaml"
    config.write_text(yaml.safe_dump(spec))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        summary = main(["--config", str(config), "--out", str(folder / "out"), *options])
    return summary, printed.getvalue()


def leaderboard(folder: Path) -> dict[str, float]:
    rows = json.loads((folder / "out" / "leaderboard.json").read_text())
    rows = rows["rows"] if isinstance(rows, dict) else rows
    return {r["candidate"]: r["mean"] for r in rows if r.get("kind") != "baseline"}


@pytest.mark.slow
def test_compare_on_ray_matches_local(cluster, fault_train, fault_local, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("MLCYCLE_FIGURES", "inline")
    _, printed = compare(tmp_path, fault_train, "--executor", "ray", "--address", cluster)
    assert "Ray tasks on 127.0.0.1" in printed and "2 node(s)" in printed, printed
    import ray

    assert not ray.is_initialized()  # let go: a driver left on a stopped cluster is ended
    local = {name: row["mean"] for name, row in fault_local.items()}
    assert set(local) == {"logistic", "forest"}
    assert leaderboard(tmp_path) == pytest.approx(local, abs=1e-6)
    for name in local:  # every fold's record and predictions in the one output folder
        for fold in range(2):
            record = tmp_path / "out" / "candidates" / name / f"fold{fold}" / "selection_fold.json"  # fmt: skip
            assert json.loads(record.read_text())["status"] == "finished"


def test_unreachable_address_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    from mlcycle.commands.compare import main

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    port = free_port()  # nothing listens there
    config = tmp_path / "cmp.yaml"
    config.write_text(yaml.safe_dump({"train": ["x.yaml"], "folds": 2, "candidates": CANDIDATES}))
    began = time.monotonic()
    with pytest.raises(SystemExit) as stopped:
        main(["--config", str(config), "--executor", "ray", "--address", f"127.0.0.1:{port}"])
    took = time.monotonic() - began
    lines = capsys.readouterr().err.strip().splitlines()
    assert stopped.value.code == 2
    assert len(lines) == 1 and f"--address 127.0.0.1:{port}" in lines[0], lines
    assert not (tmp_path / "runs").exists()
    assert took < 10, f"took {took:.1f} s"


def tune(folder: Path, train: Path, *options: str) -> tuple[list[dict], str]:
    from mlcycle.commands.tune import main

    spec = {
        "train": [str(train)], "args": ["--trainer.max_epochs=2"], "trials": 2,
        "sampler": {"seed": 1, "startup_trials": 2}, "pruner": False,
        "space": {"model.init_args.lr": {"low": 1.0e-3, "high": 3.0e-2, "log": True}},
    }  # fmt: skip
    config = folder / "tune.yaml"
    config.write_text(yaml.safe_dump(spec))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        main(["--config", str(config), "--out", str(folder / "study"), *options])
    with (folder / "study" / "trials.csv").open() as rows:
        return list(csv.DictReader(rows)), printed.getvalue()


@pytest.mark.slow
def test_tune_on_ray_matches_local(cluster, table, tmp_path, monkeypatch):
    monkeypatch.setenv("MLCYCLE_FIGURES", "inline")
    train = base_config(tmp_path, table, "label")
    (tmp_path / "local").mkdir()
    (tmp_path / "ray").mkdir()
    local, _ = tune(tmp_path / "local", train)
    remote, printed = tune(tmp_path / "ray", train, "--executor", "ray", "--address", cluster)
    assert "trials run as Ray tasks" in printed, printed
    import ray

    assert not ray.is_initialized()
    done = {t["number"]: t for t in remote if t["state"] == "COMPLETE"}
    assert len(done) == 2 and {t["state"] for t in local} == {"COMPLETE"}
    lr = "model.init_args.lr"
    for trial in local:  # the trial-seeded sampler draws the same values; the runs agree
        ray_trial = done[trial["number"]]
        assert float(ray_trial[lr]) == pytest.approx(float(trial[lr]))
        assert float(ray_trial["value"]) == pytest.approx(float(trial["value"]), rel=1e-4)
        assert ray_trial["worker"] != trial["worker"]  # run by a Ray worker process
