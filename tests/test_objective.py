"""The objective (business gate): check_gate's rules, then train.py, evaluate.py and export.py
on two tiny real runs, one that meets its objective and one that cannot."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import pytest
import yaml
from conftest import train_args, write_folder
from lightning.pytorch import seed_everything  # noqa: F401  (Lightning's log handler binds to

# the stderr of its first import: not to a test's captured one)
from mlcycle.core.errors import UserError
from mlcycle.core.objective import (
    Gate,
    Objective,
    check_gate,
    for_monitor,
    load_objective,
    parse_objective,
)

ROOT = Path(__file__).resolve().parents[1]
FULL = Objective(min=0.95, per_class_min=0.80, max_latency_ms=20, max_size_mb=10)


# check_gate ----------------------------------------------------------------------------------


def test_gate_passes_and_says_why():
    gate = check_gate(FULL, {"val/f1": 0.9885}, {"3": 0.97, "1": 0.99}, latency_ms=1.2, size_mb=3)
    assert gate.passed
    assert gate.line() == (
        "objective PASS: val/f1 0.9885 >= 0.95; worst class f1 0.9700 ('3') >= 0.8; "
        "latency 1.2 ms <= 20 ms; size 3 MB <= 10 MB"
    )
    assert [c["name"] for c in gate.checks] == [
        "val/f1",
        "per_class_min",
        "max_latency_ms",
        "max_size_mb",
    ]
    assert all(c["passed"] is True for c in gate.checks)
    assert gate.checks[1]["value"] == 0.97 and gate.checks[1]["limit"] == 0.8


def test_gate_fails_on_any_limit():
    gate = check_gate(FULL, {"val/f1": 0.9885}, {"a": 0.99}, latency_ms=25.0, size_mb=3)
    assert not gate.passed
    assert gate.line().startswith("objective FAIL: val/f1 0.9885 >= 0.95;")
    assert "latency 25 ms > 20 ms" in gate.line()
    assert [c["name"] for c in gate.failed()] == ["max_latency_ms"]
    low = check_gate(Objective(min=0.95), {"val/f1": 0.9})
    assert low.line() == "objective FAIL: val/f1 0.9000 < 0.95"


def test_per_class_takes_the_worst_class():
    objective = Objective(per_class_min=0.8)
    gate = check_gate(objective, {}, {"cat": 0.95, "dog": 0.75, "bird": 0.9})
    assert not gate.passed and gate.checks[0]["value"] == 0.75
    assert gate.checks[0]["detail"] == "worst class f1 0.7500 ('dog') < 0.8"
    # Detection's -1 (a class with nothing to score) is no evidence either way.
    detection = Objective(metric="val/map", per_class_min=0.5)
    gate = check_gate(detection, {}, {"car": 0.6, "bus": -1.0})
    assert gate.passed and gate.checks[0]["detail"] == "worst class ap 0.6000 ('car') >= 0.5"


def test_mode_min_for_losses_and_errors():
    loss = Objective(metric="val/loss", min=0.5)
    assert loss.direction == "min" and Objective(metric="val/error").direction == "min"
    assert check_gate(loss, {"val/loss": 0.31}).line() == "objective PASS: val/loss 0.3100 <= 0.5"
    assert check_gate(loss, {"val/loss": 0.61}).line() == "objective FAIL: val/loss 0.6100 > 0.5"
    # Per class, the worst is the highest; an explicit mode wins over the name.
    per_class = check_gate(
        Objective(metric="val/loss", per_class_min=0.5), {}, {"a": 0.2, "b": 0.7}
    )
    assert per_class.checks[0]["value"] == 0.7 and not per_class.passed
    assert Objective(metric="val/score", mode="min").direction == "min"
    assert Objective(metric="val/iou").direction == "max"


def test_unmeasured_checks_are_listed_and_do_not_fail():
    gate = check_gate(FULL, {"val/f1": 0.99, "val/acc": float("nan")})
    assert gate.passed
    assert gate.line() == (
        "objective PASS: val/f1 0.9900 >= 0.95; worst class f1 not measured (>= 0.8); "
        "latency not measured (<= 20 ms); size not measured (<= 10 MB)"
    )
    assert [c["passed"] for c in gate.checks] == [True, None, None, None]
    assert check_gate(Objective(min=0.5), {"val/f1": math.nan}).checks[0]["value"] is None
    assert check_gate(Objective(), {"val/f1": 0.1}).line() == "objective PASS: no limits set"


def test_split_reads_that_split_only():
    objective = Objective(min=0.95)
    bare = check_gate(objective, {"f1": 0.97, "loss": 0.2}, split="test")
    assert bare.passed and bare.checks[0]["name"] == "test/f1"
    assert check_gate(objective, {"test/f1": 0.9}, split="test").checks[0]["value"] == 0.9
    # A test gate never falls back to the val value.
    assert check_gate(objective, {"val/f1": 0.99}, split="test").checks[0]["value"] is None
    assert check_gate(objective, {"f1": 0.96}).checks[0]["value"] == 0.96  # eval_val.json


def test_gate_dict_round_trips():
    gate = check_gate(FULL, {"val/f1": 0.5})
    data = json.loads(json.dumps(gate.to_dict()))
    assert data["passed"] is False and data["line"] == gate.line()
    assert Gate.from_dict(data) == gate


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"minn": 0.9}, "unknown key objective.minn; valid keys: metric, min, per_class_min,"),
        ({"min": 95}, "objective.min 95 is outside 0..1"),
        ({"per_class_min": -0.1}, "objective.per_class_min -0.1 is outside 0..1"),
        ({"min": "high"}, "objective.min must be a finite number, got 'high'"),
        ({"min": float("nan")}, "objective.min must be a finite number"),
        ({"min": True}, "objective.min must be a finite number"),
        ({"max_size_mb": 0}, "objective.max_size_mb must be above 0"),
        ({"max_latency_ms": -5}, "objective.max_latency_ms must be above 0"),
        ({"mode": "up"}, "objective.mode must be max or min, got 'up'"),
        ({"metric": ""}, "objective.metric must be a metric name"),
        ([0.95], "objective must be a mapping"),
    ],
)
def test_bad_objective_is_a_one_line_user_error(raw, message):
    with pytest.raises(UserError) as error:
        parse_objective(raw)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_parse_and_load():
    assert parse_objective(None) is None and parse_objective(FULL) is FULL
    parsed = parse_objective({"metric": "val/loss", "min": 2, "mode": None})
    assert parsed == Objective(metric="val/loss", min=2.0) and isinstance(parsed.min, float)
    assert Objective(metric="val/loss", min=2.5).min == 2.5  # not a fraction: no 0..1 rule
    assert parsed.to_dict() == {"metric": "val/loss", "min": 2.0, "mode": "min"}
    # The default metric is the task's monitor; another metric is kept.
    assert for_monitor(Objective(min=0.5), "val/iou").metric == "val/iou"
    assert for_monitor(Objective(metric="val/acc"), "val/iou").metric == "val/acc"
    assert for_monitor(None, "val/iou") is None


def test_load_objective(tmp_path):
    assert load_objective(tmp_path) is None
    (tmp_path / "config.yaml").write_text("objective: null\n")
    assert load_objective(tmp_path) is None
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"objective": {"min": 0.9}}))
    assert load_objective(tmp_path) == Objective(min=0.9)


# train.py's --objective ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--objective.minn=0.9"],
            "unknown config key 'objective.minn'; did you mean 'objective.min'?",
        ),
        (["--objective={per_clas_min: 0.9}"], "did you mean 'objective.per_class_min'?"),
        (
            ["--objective.min=abc"],
            "config key 'objective.min': expected a number or null, got 'abc'",
        ),
        (["--objective.min=95"], "objective.min 95 is outside 0..1"),
    ],
)
def test_bad_objective_on_the_command_line(args, expected, tmp_path, capsys):
    from mlcycle.commands.train import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--config", "configs/quickstart.yaml", f"--run_dir={tmp_path / 'run'}", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0]
    assert not (tmp_path / "run").exists()


# Two real runs -------------------------------------------------------------------------------


def _quiet(func, *args):
    """``func(*args)``; returns its result, exit code and what it printed."""
    out, err, code, result = io.StringIO(), io.StringIO(), 0, None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            result = func(*args)
        except SystemExit as exc:
            code = exc.code
    return result, code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    """``pass``: any f1 meets min 0; ``fail``: one epoch at lr 1e-6 cannot reach f1 1.0."""
    from mlcycle.commands.train import main

    base = tmp_path_factory.mktemp("objective")
    data = write_folder(base / "images", per_class=12)
    limits = {
        "pass": ("--objective.min=0.0", "--objective.per_class_min=0.0"),
        "fail": ("--objective={min: 1.0, per_class_min: 0.9, max_size_mb: 100}", "--model.lr=1e-6"),
    }
    out = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)
        for name, extra in limits.items():
            run, code, printed, _ = _quiet(main, train_args(data, base / name, *extra))
            assert code == 0, (name, printed)
            out[name] = (run, printed)
    return out


def test_train_writes_the_gate(runs):
    for name, (run, printed) in runs.items():
        metrics = json.loads((run / "metrics.json").read_text())
        gate = metrics["gate"]
        assert gate["passed"] is (name == "pass"), gate
        assert metrics["objective"]["metric"] == "val/f1" and metrics["objective"]["mode"] == "max"
        assert gate["checks"][0]["name"] == "val/f1"
        assert gate["checks"][0]["value"] == metrics["val/f1"]
        worst = min(v for k, v in metrics.items() if k.startswith("val/f1/"))
        assert gate["checks"][1]["value"] == worst
        lines = printed.strip().splitlines()
        assert lines[-2] == gate["line"] and lines[-1] == f"run directory: {run}"
        assert gate["line"].startswith(f"objective {'PASS' if name == 'pass' else 'FAIL'}: val/f1 ")
        config = yaml.safe_load((run / "config.yaml").read_text())
        assert load_objective(run) == parse_objective(config["objective"])
    assert load_objective(runs["fail"][0]).max_size_mb == 100


def test_evaluate_test_split_exits_3_on_a_failed_gate(runs):
    from mlcycle.commands.evaluate import main

    run = runs["fail"][0]
    _, code, out, err = _quiet(main, ["--run", str(run), "--split", "test"])
    assert code == 3
    saved = json.loads((run / "eval_test.json").read_text())
    gate = saved["gate"]
    assert gate["passed"] is False and gate["checks"][0]["name"] == "test/f1"
    assert gate["checks"][0]["value"] == saved["metrics"]["f1"]
    assert gate["checks"][1]["value"] == min(r["f1"] for r in saved["per_class"].values())
    assert err.strip().splitlines() == [f"error: {gate['line']}"]
    assert "wrote" in out
    # On val the same failure is only printed.
    result, code, out, _ = _quiet(main, ["--run", str(run), "--split", "val"])
    assert code == 0 and result["gate"]["passed"] is False
    assert out.strip().splitlines()[-1].startswith("objective FAIL: val/f1 ")


def test_evaluate_passing_run(runs):
    from mlcycle.commands.evaluate import main

    run = runs["pass"][0]
    result, code, out, _ = _quiet(main, ["--run", str(run), "--split", "test"])
    assert code == 0 and result["gate"]["passed"] is True
    assert out.strip().splitlines()[-1].startswith("objective PASS: test/f1 ")
    assert json.loads((run / "eval_test.json").read_text())["gate"] == result["gate"]


def test_export_refuses_a_failed_run_unless_forced(runs, tmp_path):
    from mlcycle.commands.export import main

    run = runs["fail"][0]
    out = tmp_path / "export"
    args = ["--run", str(run), "--format", "onnx", "--out", str(out)]
    _, code, _, err = _quiet(main, args)
    assert code == 2 and not out.exists()
    err = err.strip().splitlines()
    assert len(err) == 1 and "failed its objective on val (val/f1 " in err[0]
    assert "--force" in err[0] and "worst class f1" in err[0]

    result, code, printed, err = _quiet(main, [*args, "--force"])
    assert code == 0 and "[--force]" in err
    meta = json.loads((out / "model.json").read_text())
    assert meta["objective"]["min"] == 1.0 and meta["objective"]["max_size_mb"] == 100
    assert meta["gate"]["passed"] is False
    size = {c["name"]: c for c in meta["gate"]["checks"]}["max_size_mb"]
    assert size["passed"] is True
    assert size["value"] == pytest.approx((out / "model.onnx").stat().st_size / 1e6)
    assert size["detail"].endswith("(model.onnx)")
    metrics = json.loads((run / "metrics.json").read_text())
    assert meta["gate"]["checks"][:2] == metrics["gate"]["checks"][:2]
    assert meta["gate"]["line"] in printed


def test_export_computes_the_gate_when_metrics_json_lacks_it(runs, tmp_path):
    from mlcycle.commands.export import main

    run = runs["pass"][0]
    metrics_file = run / "metrics.json"
    metrics = json.loads(metrics_file.read_text())
    metrics_file.write_text(json.dumps({k: v for k, v in metrics.items() if k != "gate"}))
    try:
        out = tmp_path / "export"
        _, code, printed, _ = _quiet(
            main, ["--run", str(run), "--format", "onnx", "--out", str(out)]
        )
    finally:
        metrics_file.write_text(json.dumps(metrics))
    assert code == 0
    meta = json.loads((out / "model.json").read_text())
    assert meta["gate"] == metrics["gate"] and meta["objective"] == metrics["objective"]
    assert "objective PASS: val/f1" in printed
