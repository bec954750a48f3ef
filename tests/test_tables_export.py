"""Tables, export and predict: one ONNX graph (pipeline + model) that matches the Python
pipeline and model, and predict.py on CSV rows with a bad row and a missing column."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from export_helpers import NOT_FOR_ONNX, device_folder, on_device
from test_tables_models import learnable_table, train

from mlcycle.tables import TabularData, onnx_graph
from mlcycle.tables.export import graph_scores, input_spec

# Between them, every step of the pipeline (custom and stock) goes through the converters.
PIPELINES = {
    "clip_log_bucket_onehot_target_aggregate": {
        "outliers": {"handle": "clip"},
        "transform": {"default": "log"},
        "bucket": {"columns": ["age"], "bins": 4},
        "categorical": {"encode": "onehot", "columns": {"product": "target", "plan": "ordinal"}},
        "aggregates": [{"column": "income", "by": "region", "stats": ["mean", "count"]}],
        "scale": "minmax",
    },
    "flag_power_embedding_numeric_groups": {
        "outliers": {"handle": "flag", "rule": "zscore"},
        "transform": {
            "default": "yeo-johnson",
            "columns": {"income_eur": "box-cox", "visits": "sqrt"},
        },
        "categorical": {"encode": "embedding", "min_frequency": 3},
        "aggregates": [{"column": "balance", "by": "visits", "stats": ["median", "std"]}],
        "select": {"mutual_info_top_k": 20},
    },
    "defaults": {},
}


CASES = [("messy", "churn", name) for name in sorted(PIPELINES)]
CASES.append(("breast_cancer", "target", "defaults"))  # column names with spaces


@pytest.mark.parametrize(("table", "target", "name"), CASES)
def test_pipeline_graph_gives_the_python_features_exactly(table, target, name):
    drop = ["spend"] if table == "messy" else []
    data = TabularData(
        source="builtin", path=table, target=target, drop=drop, pipeline=PIPELINES[name]
    )
    with contextlib.redirect_stdout(io.StringIO()):
        data.setup()
    pre = onnx_graph.pre_step(data.pipeline, data.frame("train").iloc[:3])
    graph = onnx_graph.pipeline_graph(data.pipeline, pre, 17)
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    import tempfile
    from pathlib import Path

    from mlcycle.edge.rows import read_rows, table_inputs

    spec = input_spec(data, pre)
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "val.csv"
        data.frame("val").to_csv(csv, index=False)
        feeds, kept, problems = table_inputs(*read_rows(csv), spec)
    assert not problems and len(kept) == len(data.frame("val"))
    got = session.run(None, feeds)[0]
    want = data.arrays("val")[0]
    assert got.shape == want.shape
    # double precision in the graph, float32 at the end as in Python: the same numbers
    assert np.nanmax(np.abs(got - want)) <= 1e-6
    assert np.array_equal(np.isnan(got), np.isnan(want))


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return learnable_table(tmp_path_factory.mktemp("table") / "rows.csv")


def export(run):
    from mlcycle.commands.export import main

    with contextlib.redirect_stdout(io.StringIO()):
        return main(["--run", str(run)])


@pytest.fixture(scope="module")
def exported_mlp(tmp_path_factory, table):
    run = train(tmp_path_factory.mktemp("mlp"), table, "label")
    return run, export(run)


@pytest.mark.parametrize(
    "extra",
    [
        (),
        (
            "--model.class_path=mlcycle.tables.ClassicTabularTask",
            "--model.estimator=random_forest",
            "--model.params={n_estimators: 20}",
            "--trainer.max_epochs=1",
        ),
        (
            "--model.class_path=mlcycle.tables.ClassicTabularTask",
            "--model.estimator=hist_gradient_boosting",
            "--model.params={max_iter: 20}",
            "--trainer.max_epochs=1",
        ),
    ],
    ids=["mlp", "random_forest", "hist_gradient_boosting"],
)
def test_export_is_one_onnx_file_matching_python_on_val_rows(tmp_path, table, extra, exported_mlp):
    run, result = exported_mlp if not extra else (None, None)
    if run is None:
        run = train(tmp_path, table, "label", *extra)
        result = export(run)
    out = run / "export"
    assert sorted(p.name for p in out.iterdir()) == [
        "model.json",
        "model.onnx",
        "reference.json",  # the monitor's (tables/monitor.py)
        "verification.json",
    ]
    report = result["report"]
    assert report["passed"] and report["rows"] > 0 and not report["rows_not_scored"]
    assert report["onnx"]["max_abs_prob_diff"] < 1e-4
    meta = json.loads((out / "model.json").read_text())
    assert meta["input"]["kind"] == "table" and meta["input"]["id_column"] == "row_id"
    assert {c["name"] for c in meta["input"]["columns"]} == {"x1", "x2", "colour", "flag", "day"}


def test_export_of_a_regression_run_matches_python(tmp_path, table):
    run = train(tmp_path, table, "value")
    report = export(run)["report"]
    assert report["passed"] and report["onnx"]["max_relative_diff"] < 1e-4
    assert abs(report["onnx"]["rmse"] - report["python"]["rmse"]) < 1e-3


def test_predict_csv_scores_good_rows_and_reports_a_bad_one(tmp_path, table, exported_mlp):
    run, _ = exported_mlp
    rows = pd.read_csv(table).head(6).drop(columns=["label", "value"]).astype({"x1": object})
    rows.loc[2, "x1"] = "lots"  # wrong type in one row
    rows.to_csv(tmp_path / "rows.csv", index=False)
    out = tmp_path / "pred.csv"
    done = on_device(
        device_folder(tmp_path / "device"),
        NOT_FOR_ONNX, str(run / "export" / "model.onnx"), "--csv",
        str(tmp_path / "rows.csv"), "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "1 of 6 rows could not be scored" in done.stderr
    found = pd.read_csv(out)
    assert list(found["row_id"]) == list(rows["row_id"])  # the id column is kept
    bad = found.iloc[2]
    assert "column 'x1': 'lots' is not a number" in bad["error"]
    good = found.drop(index=2)
    assert good["error"].isna().all() and good["class"].isin(["high", "low", "mid"]).all()
    assert np.allclose(good[["p_high", "p_low", "p_mid"]].sum(axis=1), 1.0, atol=1e-5)


def test_predict_csv_without_a_feature_column_is_one_line_naming_it(tmp_path, table, exported_mlp):
    run, _ = exported_mlp
    pd.read_csv(table).head(3).drop(columns=["colour"]).to_csv(tmp_path / "rows.csv", index=False)
    done = on_device(
        device_folder(tmp_path / "device"),
        NOT_FOR_ONNX,
        str(run / "export" / "model.onnx"),
        str(tmp_path / "rows.csv"),
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no column 'colour' (categorical)" in lines[0]


def test_predict_csv_prints_the_graph_scores_of_the_export_check(tmp_path, exported_mlp):
    """predict.py's JSON lines are the scores the export verified against Python."""
    run, _ = exported_mlp
    from mlcycle.run.loader import Run

    data = Run(run).load_data(num_workers=0)
    meta = json.loads((run / "export" / "model.json").read_text())
    with contextlib.redirect_stdout(io.StringIO()):
        scores, kept, _ = graph_scores(run / "export" / "model.onnx", data, meta["input"])
    data.frame("val").to_csv(tmp_path / "val.csv", index=False)
    done = on_device(
        device_folder(tmp_path / "device"),
        NOT_FOR_ONNX,
        str(run / "export" / "model.onnx"),
        "--csv",
        str(tmp_path / "val.csv"),
    )
    assert done.returncode == 0, done.stderr
    printed = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(printed) == len(kept)
    names = meta["class_names"]
    got = np.array([[p["probabilities"][n] for n in names] for p in printed])
    assert np.abs(got - scores).max() < 1e-5  # rounded to 6 places in the JSON
