"""tune.py's folds keep a booster's early stopping off the fold's scored rows, as compare.py
does: the booster stops on a share of the fold's train rows (model.early_stopping_fraction)."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import yaml
from test_compare_tables import base_config
from test_tables_models import learnable_table

from mlcycle.tables import boosted
from mlcycle.tables.classic import ClassicTabularTask
from mlcycle.tables.selection.compare import STOPPING_ARG, TableComparison


def rows_of(x: np.ndarray) -> set[bytes]:
    return {row.tobytes() for row in np.asarray(x, dtype=np.float32)}


def test_a_tuned_booster_never_early_stops_on_the_folds_scored_rows(tmp_path, monkeypatch):
    from mlcycle.commands.tune import main as tune

    seen: list[dict[str, set[bytes]]] = []  # per fit: the run's train and val rows, the eval set
    fit_booster, own_fit = boosted.fit_booster, ClassicTabularTask._fit_booster

    def spy_fit(model, x, y, val, categorical, rounds):
        seen[-1]["eval"] = rows_of(val[0])
        return fit_booster(model, x, y, val, categorical, rounds)

    def spy_task(self, model, x, y):
        arrays = self.trainer.datamodule.arrays
        seen.append({"train": rows_of(arrays("train")[0]), "val": rows_of(arrays("val")[0])})
        return own_fit(self, model, x, y)

    monkeypatch.setattr(boosted, "fit_booster", spy_fit)
    monkeypatch.setattr(ClassicTabularTask, "_fit_booster", spy_task)
    table = learnable_table(tmp_path / "rows.csv", rows=160)
    study = {
        "train": [str(base_config(tmp_path, table, "label"))],
        "args": [
            "--model.class_path=mlcycle.tables.ClassicTabularTask",
            "--model.estimator=lightgbm",
            "--model.early_stopping_rounds=5",
            "--trainer.max_epochs=1",
        ],
        "trials": 1,
        "folds": 2,
        "sampler": {"seed": 0, "startup_trials": 1},
        "pruner": False,
        "space": {"model.params.num_leaves": {"low": 4, "high": 8, "type": "int"}},
    }
    (tmp_path / "tune.yaml").write_text(yaml.safe_dump(study))
    with contextlib.redirect_stdout(io.StringIO()):
        tune(["--config", str(tmp_path / "tune.yaml"), "--out", str(tmp_path / "t")])
    assert len(seen) == 2  # one booster per fold
    for fit in seen:
        assert fit["eval"] and fit["val"]
        assert not fit["eval"] & fit["val"]  # the scored rows never pick the trees
        assert fit["eval"] <= fit["train"]
        assert len(fit["eval"]) < 0.25 * len(fit["train"])
    fold = yaml.safe_load((tmp_path / "t/trials/0/fold1/config.yaml").read_text())
    assert fold["model"]["init_args"]["early_stopping_fraction"] == 0.15
    # the best config is for a final run on the config's own split: its val rows stop it
    best = yaml.safe_load((tmp_path / "t/best.yaml").read_text())
    assert best["model"]["init_args"]["early_stopping_fraction"] is None


def test_fold_run_args_leave_other_models_and_the_users_own_fraction():
    def config(estimator: str, fraction: float | None) -> dict:
        init = {"estimator": estimator, "early_stopping_fraction": fraction}
        return {"model": {"class_path": "mlcycle.tables.ClassicTabularTask", "init_args": init}}

    assert TableComparison.fold_run_args(config("xgboost", None)) == [STOPPING_ARG]
    assert TableComparison.fold_run_args(config("catboost.CatBoostRegressor", None)) == [
        STOPPING_ARG
    ]
    assert TableComparison.fold_run_args(config("xgboost", 0.3)) == []  # the user's share
    assert TableComparison.fold_run_args(config("random_forest", None)) == []
    mlp = {"model": {"class_path": "mlcycle.tables.TabularTask", "init_args": {"hidden": [8]}}}
    assert TableComparison.fold_run_args(mlp) == []
