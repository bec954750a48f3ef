"""LightGBM, XGBoost and CatBoost as table models: trained through train.py with early stopping on
the run's val rows and native categoricals, exported into the one ONNX graph with the pipeline
(parity with the fitted model), and compared and tuned as candidates."""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from test_tables_models import learnable_table, train

from mlcycle.core.errors import UserError
from mlcycle.tables import boosted
from mlcycle.tables.classic import ClassicTabularTask, build_estimator

LIBRARIES = ["lightgbm", "xgboost", "catboost"]
CLASSIC = "--model.class_path=mlcycle.tables.ClassicTabularTask"


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    return learnable_table(tmp_path_factory.mktemp("table") / "rows.csv", rows=300)


def boosted_run(tmp: Path, table: Path, name: str, target: str, *extra: str) -> Path:
    return train(tmp, table, target, CLASSIC, f"--model.estimator={name}",
                 "--trainer.max_epochs=1", *extra)  # fmt: skip


def export(run: Path) -> dict:
    from mlcycle.commands.export import main

    with contextlib.redirect_stdout(io.StringIO()):
        main(["--run", str(run)])
    return json.loads((run / "export" / "verification.json").read_text())


def fitted(run: Path):
    from mlcycle.run.loader import Run

    return Run(run).load_model("best").fitted


@pytest.mark.parametrize("target", ["label", "value"])
@pytest.mark.parametrize("name", LIBRARIES)
def test_booster_trains_stops_early_and_exports_with_parity(tmp_path, table, name, target):
    run = boosted_run(tmp_path, table, name, target)
    model = fitted(run)  # back from the weights-only checkpoint
    assert type(model).__module__.split(".")[0] == name
    trees = boosted.trees_used(model)
    assert 1 <= trees < boosted.TREES  # early stopping on the val rows, not the tree count
    history = pd.read_csv(run / "history.csv")
    assert history["train/trees"].iloc[-1] == trees
    metrics = json.loads((run / "metrics.json").read_text())
    if target == "label":
        assert metrics["val/f1"] > 0.7  # 3 classes: the majority class scores about 0.2
    else:
        assert metrics["val/rmse"] < 2.0  # value: 3 * score + 10, std about 5
    report = export(run)
    assert report["passed"], report["failures"]
    val = pd.read_csv(run / "splits.csv")["split"].eq("val").sum()
    assert report["rows"] == val and not report["rows_not_scored"]  # every val row scored
    onnx = report["onnx"]
    if target == "label":
        assert onnx["max_abs_prob_diff"] <= report["tolerance"]
        assert onnx["label_agree"] == report["rows"]
    else:
        assert onnx["max_relative_diff"] <= report["tolerance"]
    model_json = json.loads((run / "export" / "model.json").read_text())
    assert model_json["arch"].startswith(f"{name}.")


def test_category_codes_are_native_categories(tmp_path, table):
    # the pipeline's codes (categorical.encode: embedding) are LightGBM and XGBoost categories
    lgbm = fitted(boosted_run(tmp_path / "l", table, "lightgbm", "label"))
    trees = lgbm.booster_.dump_model()["tree_info"]

    def kinds(node: dict) -> set[str]:
        if "decision_type" not in node:
            return set()
        own = {node["decision_type"]}
        return own | kinds(node["left_child"]) | kinds(node["right_child"])

    assert "==" in set().union(*(kinds(t["tree_structure"]) for t in trees))
    xgb = fitted(boosted_run(tmp_path / "x", table, "xgboost", "label"))
    assert xgb.get_booster().feature_types[-1] == "c" and xgb.enable_categorical


def test_without_early_stopping_every_tree_is_kept(tmp_path, table):
    run = boosted_run(tmp_path, table, "lightgbm", "value", "--model.early_stopping_rounds=null",
                      "--model.params={n_estimators: 25}")  # fmt: skip
    assert boosted.trees_used(fitted(run)) == 25


def test_bad_booster_options_are_one_line_errors(monkeypatch):
    with pytest.raises(UserError, match="early_stopping_rounds=0 must be at least 1"):
        ClassicTabularTask(estimator="lightgbm", early_stopping_rounds=0, num_classes=2,
                           num_features=3, task_kind="classification")  # fmt: skip
    with pytest.raises(UserError, match="early_stopping_fraction=1.0 must be between 0 and 1"):
        ClassicTabularTask(estimator="lightgbm", early_stopping_fraction=1.0, num_classes=2,
                           num_features=3, task_kind="classification")  # fmt: skip
    x, y = np.arange(40.0).reshape(20, 2), np.array([0, 1] * 10)
    fit_x, stop_x, fit_y, stop_y = boosted.stopping_split(x, y, 0.2, 0, regression=False)
    assert len(stop_y) == 4 and sorted(stop_y) == [0, 0, 1, 1] and len(fit_x) == 16
    with pytest.raises(UserError, match="model.params do not fit"):
        build_estimator("catboost", {"no_such_option": 1}, "regression", 0)
    model = build_estimator("xgboost", {}, "classification", 0)
    with pytest.raises(UserError, match="class index 1 has no train row"):
        boosted.check_labels(model, np.array([0, 2, 2]))
    monkeypatch.setitem(sys.modules, "catboost", None)  # as if catboost were not installed
    with pytest.raises(UserError, match=r"'boosted' extra \(catboost is not installed\)"):
        build_estimator("catboost", {}, "classification", 0)


def test_compare_and_tune_take_boosted_candidates(tmp_path, table):
    from test_compare_tables import base_config

    from mlcycle.commands.compare import main as compare
    from mlcycle.commands.tune import main as tune

    base = str(base_config(tmp_path, table, "label"))
    spec = {
        "train": [base],
        "folds": 2,
        "candidates": [
            {"name": "lgbm", "estimator": "lightgbm", "params": {"num_leaves": 7}},
            {"name": "cat", "estimator": "catboost", "params": {"depth": 3},
             "args": ["--model.early_stopping_rounds=20"]},
        ],
    }  # fmt: skip
    (tmp_path / "cmp.yaml").write_text(yaml.safe_dump(spec))
    with contextlib.redirect_stdout(io.StringIO()):
        summary = compare(["--config", str(tmp_path / "cmp.yaml"), "--out", str(tmp_path / "c")])
    rows = {r["candidate"]: r for r in summary["rows"]}
    assert set(rows) == {"lgbm", "cat"}
    for name, row in rows.items():
        assert len(row["folds"]) == 2 and row["mean"] > 0.5, row
        config = yaml.safe_load(
            (tmp_path / "c/candidates" / name / "fold1/config.yaml").read_text()
        )
        assert (
            config["model"]["init_args"]["estimator"]
            == {"lgbm": "lightgbm", "cat": "catboost"}[name]
        )
        # the fold's val rows are the scored ones: early stopping holds out train rows instead
        assert config["model"]["init_args"]["early_stopping_fraction"] == 0.15
    study = {
        "train": [base],
        "args": [CLASSIC, "--model.estimator=xgboost", "--trainer.max_epochs=1"],
        "trials": 2,
        "folds": 2,
        "sampler": {"seed": 1, "startup_trials": 2},
        "pruner": False,
        "space": {"model.params.max_depth": {"low": 2, "high": 6, "type": "int"}},
    }
    (tmp_path / "tune.yaml").write_text(yaml.safe_dump(study))
    with contextlib.redirect_stdout(io.StringIO()):
        tune(["--config", str(tmp_path / "tune.yaml"), "--out", str(tmp_path / "t")])
    trials = pd.read_csv(tmp_path / "t" / "trials.csv")
    assert (trials["state"] == "COMPLETE").sum() == 2
    best = yaml.safe_load((tmp_path / "t" / "best.yaml").read_text())
    assert 2 <= best["model"]["init_args"]["params"]["max_depth"] <= 6
