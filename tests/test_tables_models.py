"""Tables, the model side: the MLP and the classic models trained through train.py on a small
learnable table, their metrics, checkpoints, callbacks and evaluation."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mlcycle.core.errors import UserError
from mlcycle.tables.classic import (
    ESTIMATORS,
    build_estimator,
    estimator_from_tensor,
    estimator_to_tensor,
)
from mlcycle.tables.task import TabularTask


def learnable_table(path: Path, rows: int = 360, seed: int = 0) -> Path:
    """Numbers, a category, a boolean and a date; ``label`` (3 classes) and ``value`` follow
    from them with a little noise, so a model that learns beats the majority class easily."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    colour = rng.choice(["red", "green", "blue"], rows)
    flag = rng.random(rows) < 0.5
    shift = np.select([colour == "red", colour == "green"], [1.5, -1.5], 0.0)
    score = x1 + shift + 0.8 * flag
    label = np.where(score > 0.8, "high", np.where(score < -0.8, "low", "mid"))
    frame = pd.DataFrame(
        {
            "row_id": [f"R{i:04d}" for i in range(rows)],
            "x1": x1.round(4),
            "x2": x2.round(4),
            "colour": colour,
            "flag": np.where(flag, "yes", "no"),
            "day": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, rows), "D"),
            "label": label,
            "value": (3 * score + 10 + rng.normal(0, 0.3, rows)).round(4),
        }
    )
    frame.loc[rng.choice(rows, 12, replace=False), "x2"] = np.nan
    frame.to_csv(path, index=False)
    return path


def train(tmp: Path, table: Path, target: str, *extra: str) -> Path:
    """train.py in-process on ``table``; returns the run directory."""
    from mlcycle.commands.train import main

    drop = "value" if target == "label" else "label"
    args = [
        "--data.class_path=mlcycle.tables.TabularData",
        "--data.source=csv",
        f"--data.path={table}",
        f"--data.target={target}",
        f"--data.drop=[{drop}]",
        "--data.id_column=row_id",
        "--data.batch_size=32",
        "--data.pipeline={categorical: {encode: embedding}}",
        "--model.class_path=mlcycle.tables.TabularTask",
        "--model.lr=0.01",
        "--trainer.max_epochs=2",
        "--trainer.accelerator=cpu",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--run_dir={tmp / 'run'}",
        *extra,
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        return Path(main(args))


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    return learnable_table(tmp_path_factory.mktemp("table") / "rows.csv")


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory, table) -> Path:
    return train(tmp_path_factory.mktemp("mlp"), table, "label")


@pytest.fixture(scope="module")
def classic_run(tmp_path_factory, table) -> Path:
    return train(
        tmp_path_factory.mktemp("classic"),
        table,
        "label",
        "--model.class_path=mlcycle.tables.ClassicTabularTask",
        "--model.estimator=random_forest",
        "--model.params={n_estimators: 30}",
        "--trainer.max_epochs=1",
    )


def metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def test_mlp_classification_beats_the_majority_class_in_two_epochs(mlp_run):
    found = metrics(mlp_run)
    assert found["monitor"] == "val/f1" and found["epochs"] == 2
    chance = next(f for f in found["diagnosis"] if f["kind"] == "learning")["values"]["chance"]
    assert found["val/f1"] > chance + 0.25, (found["val/f1"], chance)
    assert found["learned"] is True
    for name in ("confusion_matrix.png", "worst_predictions.csv", "loss_curves.png"):
        assert (mlp_run / name).is_file(), name
    worst = pd.read_csv(mlp_run / "worst_predictions.csv")
    assert {"row", "true", "predicted", "p_true", "row_id", "x1"} <= set(worst.columns)
    assert worst["p_true"].is_monotonic_increasing  # worst first


def test_mlp_regression_learns_the_value(tmp_path, table):
    run = train(tmp_path, table, "value", "--model.lr=0.02", "--model.loss=huber")
    found = metrics(run)
    assert found["monitor"] == "val/rmse"
    assert found["val/r2"] > 0.5, found["val/r2"]  # predicting the mean scores 0
    assert {"val/rmse", "val/mae", "val/r2", "val/loss", "train/loss"} <= set(found)
    assert (run / "residuals.png").is_file() and (run / "worst_predictions.csv").is_file()


def test_classic_model_trains_through_train_py_with_the_same_record(classic_run, mlp_run):
    found, deep = metrics(classic_run), metrics(mlp_run)
    assert found["status"] == "finished" and found["epochs"] == 1
    shared = {k for k in deep if k.startswith("val/")}
    assert shared <= set(found), shared - set(found)  # metrics.json reads the same
    assert found["val/f1"] > 0.7


def test_classic_checkpoint_loads_weights_only_and_predicts_the_same(classic_run):
    from mlcycle.run.loader import Run

    checkpoint = torch.load(
        classic_run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True
    )
    assert checkpoint["estimator_skops"].dtype == torch.uint8
    run = Run(classic_run)
    task = run.load_model()
    data = run.load_data(num_workers=0)
    x, y = data.arrays("val")
    probs = task.scores(torch.from_numpy(x)).numpy()
    assert probs.shape == (len(y), 3)
    f1_known = metrics(classic_run)["val/acc"]
    assert abs(float((probs.argmax(1) == y).mean()) - f1_known) < 1e-6


def test_evaluate_scores_a_table_run(mlp_run):
    from mlcycle.evaluators.run_split import evaluate

    with contextlib.redirect_stdout(io.StringIO()):
        result = evaluate(mlp_run, "val")
    assert result["rows"] == result["images"] > 0
    assert abs(result["metrics"]["f1"] - metrics(mlp_run)["val/f1"]) < 1e-4
    assert (mlp_run / "confusion_matrix_val.png").is_file()
    assert (mlp_run / "worst_predictions_val.csv").is_file()


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_every_short_name_builds_an_estimator(name):
    kinds = [
        k
        for k, path in zip(("classification", "regression"), ESTIMATORS[name], strict=True)
        if path
    ]
    for kind in kinds:
        model = build_estimator(name, {}, kind, seed=0)
        assert hasattr(model, "fit")


def test_bad_estimators_are_one_line_errors():
    with pytest.raises(UserError, match="short name"):
        build_estimator("forest", {}, "classification", 0)
    with pytest.raises(UserError, match="no regression model"):
        build_estimator("logistic_regression", {}, "regression", 0)
    with pytest.raises(UserError, match="do not fit"):
        build_estimator("knn", {"n_trees": 3}, "classification", 0)


def test_the_checkpoint_refuses_an_estimator_holding_foreign_types():
    import fractions

    from sklearn.tree import DecisionTreeClassifier

    model = DecisionTreeClassifier().fit([[0.0], [1.0]], [0, 1])
    again = estimator_from_tensor(estimator_to_tensor(model))
    assert again.predict([[0.9]])[0] == 1
    model.note = fractions.Fraction(1, 3)  # not scikit-learn, NumPy or SciPy
    with pytest.raises(UserError, match="fractions.Fraction"):
        estimator_from_tensor(estimator_to_tensor(model))


def test_linked_feature_counts_must_agree():
    with pytest.raises(UserError, match="feature columns"):
        TabularTask(num_classes=2, num_features=5, num_numeric=3, cardinalities=[4])
    task = TabularTask(num_classes=1, num_features=4, num_numeric=3, cardinalities=[5])
    assert task.regression and task.monitor.metric == "val/rmse"
    x = torch.tensor([[0.1, 0.2, 0.3, 9.0], [0.0, 0.0, 0.0, -1.0]])  # codes past the range -> 0
    assert task.eval().scores(x).shape == (2,)
