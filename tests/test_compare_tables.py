"""compare.py and tune.py on a tiny generated table: the MLP and classic models as train.py runs
on content-stable folds, the leaderboard, out-of-fold analysis, a sealed test split, and the
regression monitor (val/rmse, lower is better) read from the run, not the task class."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from test_tables_models import learnable_table

FAST = ["--trainer.max_epochs=2", "--model.hidden=[16]", "--model.lr=0.02"]
ONEHOT = "--data.pipeline.categorical={encode: onehot}"


@pytest.fixture(scope="module", autouse=True)
def inline_figures():
    # figures drawn in the training process: no niced worker process competing for the CPU
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLCYCLE_FIGURES", "inline")
        yield


def base_config(folder: Path, table: Path, target: str) -> Path:
    drop = "value" if target == "label" else "label"
    config = {
        "seed_everything": 0,
        "trainer": {"accelerator": "cpu", "max_epochs": 2},
        "model": {"class_path": "mlcycle.tables.TabularTask", "init_args": {"hidden": [16]}},
        "data": {
            "class_path": "mlcycle.tables.TabularData",
            "init_args": {
                "source": "csv",
                "path": str(table),
                "target": target,
                "drop": [drop],
                "id_column": "row_id",
                "batch_size": 32,
                "pipeline": {"categorical": {"encode": "embedding"}},
            },
        },
    }
    path = folder / f"train_{target}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def compare(folder: Path, train: Path, candidates: list[dict], **extra) -> dict:
    from mlcycle.commands.compare import main

    spec = {"train": [str(train)], "args": FAST, "folds": 2, "candidates": candidates, **extra}
    config = folder / "cmp.yaml"
    config.write_text(yaml.safe_dump(spec))
    out = folder / "out"
    with contextlib.redirect_stdout(io.StringIO()):
        summary = main(["--config", str(config), "--out", str(out)])
    return {"out": out, "summary": summary, "config": config}


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    return learnable_table(tmp_path_factory.mktemp("table") / "rows.csv", rows=160)


@pytest.fixture(scope="module")
def classified(tmp_path_factory, table):
    folder = tmp_path_factory.mktemp("cmp_cls")
    candidates = [
        {"name": "mlp"},
        {"name": "logistic", "estimator": "linear", "args": [ONEHOT]},
        {"name": "forest", "estimator": "random_forest", "params": {"n_estimators": 20}},
        {"name": "pixels_only", "estimator": "linear", "pca": 3},
    ]
    objective = {"metric": "val/f1", "min": 0.3, "max_latency_ms": 1000}
    return compare(folder, base_config(folder, table, "label"), candidates, objective=objective)


@pytest.fixture(scope="module")
def regressed(tmp_path_factory, table):
    folder = tmp_path_factory.mktemp("cmp_reg")
    candidates = [
        {"name": "linear", "estimator": "linear", "args": [ONEHOT]},
        {"name": "tree", "estimator": "decision_tree", "params": {"max_depth": 2}},
    ]
    return compare(folder, base_config(folder, table, "value"), candidates)


def rows_by_name(summary: dict) -> dict[str, dict]:
    return {r["candidate"]: r for r in summary["rows"]}


def test_leaderboard_ranks_table_candidates_with_every_column(classified):
    out, summary = classified["out"], classified["summary"]
    for name in ("leaderboard.csv", "leaderboard.md", "leaderboard.json", "leaderboard.html"):
        assert (out / name).is_file(), name
    rows = rows_by_name(summary)
    assert summary["metric"] == "val/f1" and summary["mode"] == "max"
    for name in ("mlp", "logistic", "forest"):
        row = rows[name]
        assert len(row["folds"]) == 2 and row["std"] >= 0, row
        assert row["fit_s"] > 0 and 0 < row["latency_ms"] < 1000 and row["params"] > 0
        assert row["size_mb"] > 0 and row["gate"] in (True, False) and row["budget"] is True
        assert set(row["per_class_f1"]) == {"high", "low", "mid"}
    assert rows["forest"]["mean"] > 0.6, rows["forest"]  # it learns the table
    means = [r["mean"] for r in summary["rows"] if r.get("mean") is not None]
    assert means == sorted(means, reverse=True)
    # an image-only key on a table candidate: a one-line error in its row, the others go on
    assert "'pca' is for image comparisons" in rows["pixels_only"]["error"]
    page = (out / "leaderboard.md").read_text()
    assert "ms per row" in page.replace("milliseconds per row", "ms per row")
    assert "Image-only parts" in page and "are skipped" in page


def test_every_candidate_fold_is_a_run_on_its_fold_with_the_test_split_sealed(classified):
    out = classified["out"]
    record = json.loads((out / "comparison.json").read_text())
    with (out / "folds.csv").open() as fh:
        pool = {r["path"]: int(r["fold"]) for r in csv.DictReader(fh)}
    assert len(pool) == record["rows"]
    for name in ("mlp", "logistic", "forest"):
        for fold in range(2):
            run = out / "candidates" / name / f"fold{fold}"
            assert (run / "checkpoints" / "best.ckpt").is_file()
            splits = pd.read_csv(run / "splits.csv")
            assert (splits["split"] == "test").sum() == record["test_rows_sealed"]
            assert not set(splits.loc[splits["split"] == "test", "path"]) & set(pool)
            val = set(splits.loc[splits["split"] == "val", "path"])
            assert val == {k for k, f in pool.items() if f == fold}
    # the out-of-fold scores use the same definitions as the run's own validation
    run = out / "candidates" / "forest" / "fold1"
    own = json.loads((run / "metrics.json").read_text())["val/f1"]
    scored = json.loads((run / "selection_fold.json").read_text())["scores"]["f1"]
    assert scored == pytest.approx(own, abs=1e-4)
    oof = np.load(out / "candidates" / "forest" / "oof.npz")
    assert oof["probs"].shape == (len(pool), 3)
    assert np.allclose(oof["probs"].sum(axis=1), 1, atol=1e-4)
    # a classic fold run is a normal run: evaluate.py scores it, export.py exports it
    from mlcycle.commands.evaluate import main as evaluate
    from mlcycle.commands.export import main as export

    with contextlib.redirect_stdout(io.StringIO()):
        evaluate(["--run", str(run), "--split", "val"])
        export(["--run", str(run), "--format", "onnx"])
    assert json.loads((run / "eval_val.json").read_text())["metrics"]["f1"] == pytest.approx(
        own, abs=1e-4
    )
    assert json.loads((run / "export" / "verification.json").read_text())["passed"] is True


def test_out_of_fold_analysis_shortlist_and_importance(classified):
    out, summary = classified["out"], classified["summary"]
    pool = len(np.load(out / "candidates" / "forest" / "oof.npz")["target"])
    confusion = summary["confusion"]  # out of fold, rows: true class
    assert confusion and all(np.sum(m) == pool for m in confusion.values())
    figures = {p.name for p in (out / "figures").iterdir()}
    assert {"leaderboard.png", "per_class_f1.png", "error_correlation.png"} <= figures
    assert not any(f.startswith(("highest_loss", "attributions")) for f in figures)
    importance = summary["permutation_importance"]
    columns = [r["column"] for r in importance["columns"]]
    assert set(columns) == {"x1", "x2", "colour", "flag", "day"}
    assert columns[0] in ("x1", "colour"), importance  # the label follows x1 and colour
    shortlist = yaml.safe_load((out / "shortlist.yaml").read_text())
    for member in shortlist["members"]:
        assert len(member["runs"]) == 2 and all(Path(r).is_dir() for r in member["runs"])


def test_regression_ranks_by_rmse_lower_first_with_residuals(regressed):
    summary = regressed["summary"]
    assert summary["metric"] == "val/rmse" and summary["mode"] == "min"
    rows = rows_by_name(summary)
    assert rows["linear"]["rank"] == 1 and rows["linear"]["mean"] < rows["tree"]["mean"]
    residuals = summary["residuals"]["linear"]
    assert residuals["rmse"] < residuals["abs_max"] and len(residuals["worst_rows"]) == 5
    assert (regressed["out"] / "figures" / "residuals_linear.png").is_file()
    shortlist = yaml.safe_load((regressed["out"] / "shortlist.yaml").read_text())
    assert shortlist["members"][0]["name"] == "linear" and "ensemble_rmse" in shortlist


def test_a_regression_run_names_its_own_monitor_not_the_class_default(regressed):
    from mlcycle.card.facts import load_facts
    from mlcycle.core.objective import run_monitor
    from mlcycle.selection.compare.kinds import comparison_kind
    from mlcycle.selection.config import build_data, resolve_config
    from mlcycle.tables.classic import ClassicTabularTask

    run = regressed["out"] / "candidates" / "linear" / "fold0"
    assert ClassicTabularTask.monitor.metric == "val/f1"  # the class default
    assert run_monitor(run, ClassicTabularTask) == ("val/rmse", "min")
    assert load_facts(run).monitor == "val/rmse"
    config = resolve_config(["--config", str(run / "config.yaml")])
    with contextlib.redirect_stdout(io.StringIO()):
        data = build_data(config)
        assert comparison_kind(config).task_monitor(config, data) == ("val/rmse", "min")


def test_table_folds_follow_content_not_file_order(tmp_path, table):
    from mlcycle.tables.data import TabularData
    from mlcycle.tables.selection.pool import build_table_pool

    shuffled = tmp_path / "shuffled.csv"
    frame = pd.read_csv(table)
    frame.sample(frac=1, random_state=3)[frame.columns[::-1]].to_csv(shuffled, index=False)
    folds = []
    for path in (table, shuffled):
        data = TabularData(source="csv", path=str(path), target="label", drop=["value"])
        with contextlib.redirect_stdout(io.StringIO()):
            pool = build_table_pool(data, 3, seed=7)
        folds.append(dict(zip(pool.paths, pool.folds.tolist(), strict=True)))
        for label in range(3):  # stratified: each class spread over the folds
            counts = np.bincount(pool.folds[pool.target == label], minlength=3)
            assert counts.max() - counts.min() <= 1
    assert folds[0] == folds[1]


def test_tune_searches_a_regression_table_on_folds_by_rmse(tmp_path, table):
    from mlcycle.commands.tune import main as tune

    spec = {
        "train": [str(base_config(tmp_path, table, "value"))],
        "args": ["--trainer.max_epochs=2"],
        "trials": 2,
        "folds": 2,
        "sampler": {"seed": 1, "startup_trials": 2},
        "pruner": False,
        "space": {
            "model.init_args.lr": {"low": 1.0e-3, "high": 3.0e-2, "log": True},
            "model.hidden": {"choices": {"small": [8], "wide": [32, 16]}},
            "model.dropout": {"low": 0.0, "high": 0.3},
        },
    }
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(spec))
    with contextlib.redirect_stdout(io.StringIO()):
        tune(["--config", str(path), "--out", str(tmp_path / "study")])
    study = json.loads((tmp_path / "study" / "study.json").read_text())
    trials = pd.read_csv(tmp_path / "study" / "trials.csv")
    assert (trials["state"] == "COMPLETE").sum() == 2
    assert trials["value"].min() == pytest.approx(study["best"]["value"])  # lower is better
    run = Path(trials["run_dir"][0]) / "fold1"
    assert json.loads((run / "metrics.json").read_text())["monitor"] == "val/rmse"
    best = yaml.safe_load((tmp_path / "study" / "best.yaml").read_text())
    assert best["model"]["init_args"]["hidden"] in ([8], [32, 16])


def test_a_regression_comparison_refuses_a_classification_gate(tmp_path, table, capsys):
    with pytest.raises(SystemExit) as stopped:
        compare(
            tmp_path,
            base_config(tmp_path, table, "value"),
            [{"name": "linear", "estimator": "linear"}],
            objective={"metric": "val/f1", "min": 0.5},
        )
    assert stopped.value.code == 2
    assert "is a classification gate" in capsys.readouterr().err  # not silently an RMSE limit
