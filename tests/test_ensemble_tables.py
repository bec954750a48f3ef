"""ensemble.py on table runs: an MLP and a classic model, each with its own pipeline, as one
run directory that evaluate.py scores, export.py writes as ONE ONNX graph on the raw columns
(verified against the Python ensemble) and predict.py --csv runs."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pandas as pd
import pytest
import torch
from export_helpers import NOT_FOR_ONNX, device_folder, on_device
from test_tables_models import learnable_table, train

from mlcycle.run.loader import Run

CLASSIC = (
    "--model.class_path=mlcycle.tables.ClassicTabularTask",
    "--model.estimator=linear",
    "--trainer.max_epochs=1",
    "--data.pipeline={categorical: {encode: onehot}}",  # another pipeline than the MLP's
)


def quiet(fn, *args):
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args)


def ensemble(*args: str):
    from mlcycle.commands.ensemble import main

    return quiet(main, list(args))


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return learnable_table(tmp_path_factory.mktemp("table") / "rows.csv")


@pytest.fixture(scope="module")
def built(tmp_path_factory, table):
    mlp = train(tmp_path_factory.mktemp("mlp"), table, "label")
    classic = train(tmp_path_factory.mktemp("classic"), table, "label", *CLASSIC)
    out = tmp_path_factory.mktemp("ens") / "ens"
    ensemble("--runs", str(mlp), str(classic), "--method", "weighted", "--out", str(out))
    return mlp, classic, out


def member_scores(run) -> np.ndarray:
    """A member's own val probabilities, through its own pipeline."""
    task, data = Run(run).load_model(), Run(run).load_data(num_workers=0)
    x = quiet(lambda: data.arrays("val")[0])
    with torch.no_grad():
        return task.scores(torch.from_numpy(x)).numpy()


def test_table_ensemble_evaluates_as_the_weighted_mean_of_its_members(built):
    from mlcycle.commands.evaluate import main as evaluate

    mlp, classic, out = built
    record = json.loads((out / "ensemble.json").read_text())
    weights = [m["weight"] for m in record["members"]]
    assert record["method"] == "weighted" and abs(sum(weights) - 1) < 1e-6
    result = quiet(evaluate, ["--run", str(out), "--split", "val"])
    assert 0.5 < result["metrics"]["f1"] <= 1 and result["rows"] > 0
    assert (out / "worst_predictions_val.csv").is_file()
    want = weights[0] * member_scores(mlp) + weights[1] * member_scores(classic)
    frame = quiet(lambda: Run(out).load_data(num_workers=0).frame("val"))
    got = quiet(Run(out).load_model().frame_scores, frame)
    assert got.shape == want.shape and np.abs(got - want).max() < 1e-5


def test_table_ensemble_exports_one_onnx_that_predict_scores(tmp_path, table, built):
    from mlcycle.commands.export import main as export

    _, _, out = built
    report = quiet(export, ["--run", str(out)])["report"]
    assert report["passed"] and report["rows"] > 0 and not report["rows_not_scored"]
    assert report["onnx"]["max_abs_prob_diff"] < 1e-4
    assert sorted(p.name for p in (out / "export").iterdir()) == [
        "model.json",
        "model.onnx",
        "reference.json",  # the monitor's, built from the ensemble's one graph
        "verification.json",
    ]
    meta = json.loads((out / "export" / "model.json").read_text())
    assert {c["name"] for c in meta["input"]["columns"]} == {"x1", "x2", "colour", "flag", "day"}
    rows = pd.read_csv(table).head(5).drop(columns=["label", "value"])
    rows.to_csv(tmp_path / "rows.csv", index=False)
    done = on_device(
        device_folder(tmp_path / "device"),
        NOT_FOR_ONNX, str(out / "export" / "model.onnx"), "--csv",
        str(tmp_path / "rows.csv"), "--out", str(tmp_path / "pred.csv"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    found = pd.read_csv(tmp_path / "pred.csv")
    assert list(found["row_id"]) == list(rows["row_id"])
    assert np.allclose(found[["p_high", "p_low", "p_mid"]].sum(axis=1), 1.0, atol=1e-5)


def test_regression_table_ensemble_is_the_mean_prediction_and_exports(tmp_path, table):
    from mlcycle.commands.export import main as export

    mlp = train(tmp_path / "a", table, "value")
    classic = train(tmp_path / "b", table, "value", *CLASSIC)
    out = ensemble("--runs", str(mlp), str(classic), "--out", str(tmp_path / "ens"))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["monitor"] == "val/rmse" and metrics["val/rmse"] > 0
    want = (member_scores(mlp) + member_scores(classic)) / 2
    frame = quiet(lambda: Run(out).load_data(num_workers=0).frame("val"))
    assert np.abs(quiet(Run(out).load_model().frame_scores, frame) - want).max() < 1e-4
    report = quiet(export, ["--run", str(out)])["report"]
    assert report["passed"] and report["onnx"]["max_relative_diff"] < 1e-4


def test_greedy_weights_pick_members_as_ensemble_selection_does():
    from mlcycle.selection.ensemble.combine import greedy_weights

    target = np.linspace(0.0, 10.0, 50)
    exact, noisy = target.copy(), target + np.random.default_rng(0).normal(0, 3, 50)
    assert greedy_weights(np.stack([noisy, exact]), target) == [0.0, 1.0]
    high, low = target + 1.0, target - 1.0  # biased both ways: their mean is exact
    weights = greedy_weights(np.stack([high, low, noisy]), target)
    assert abs(weights[0] - weights[1]) <= 0.05 and weights[2] == 0.0


def test_a_regression_ensemble_takes_greedy_weights(tmp_path, table):
    a = train(tmp_path / "a", table, "value", *CLASSIC)
    b = train(tmp_path / "b", table, "value")
    out = ensemble("--runs", str(a), str(b), "--method", "weighted", "--out", str(tmp_path / "e"))
    record = json.loads((out / "ensemble.json").read_text())
    weights = [m["weight"] for m in record["members"]]
    assert record["method"] == "weighted" and abs(sum(weights) - 1) < 1e-6
    want = weights[0] * member_scores(a) + weights[1] * member_scores(b)
    frame = quiet(lambda: Run(out).load_data(num_workers=0).frame("val"))
    assert np.abs(quiet(Run(out).load_model().frame_scores, frame) - want).max() < 1e-4
