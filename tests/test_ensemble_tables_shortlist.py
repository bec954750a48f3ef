"""ensemble.py --shortlist on a table comparison: each short-listed candidate is the bag of its
fold runs, the combination (soft, or a stacking model cross-fitted on compare.py's out-of-fold
predictions) goes into ONE exported ONNX graph, which export.py verifies against the Python
ensemble; evaluate.py scores the run."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
import yaml
from test_compare_tables import ONEHOT, base_config
from test_tables_models import learnable_table

from mlcycle.run.loader import Run


def quiet(fn, *args):
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args)


def ensemble(*args: str):
    from mlcycle.commands.ensemble import main

    return quiet(main, list(args))


def compare(folder, target: str, candidates: list[dict]):
    from mlcycle.commands.compare import main

    train = base_config(folder, learnable_table(folder / "rows.csv", rows=160), target)
    spec = {"train": [str(train)], "folds": 2, "candidates": candidates}
    (folder / "cmp.yaml").write_text(yaml.safe_dump(spec))
    quiet(main, ["--config", str(folder / "cmp.yaml"), "--out", str(folder / "out")])
    return folder / "out"


CANDIDATES = [
    {"name": "logistic", "estimator": "linear", "args": [ONEHOT]},
    {"name": "forest", "estimator": "random_forest", "params": {"n_estimators": 15}},
    {"name": "tree", "estimator": "decision_tree", "params": {"max_depth": 3}},
]


@pytest.fixture(scope="module", autouse=True)
def inline_figures():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLCYCLE_FIGURES", "inline")
        yield


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    out = compare(tmp_path_factory.mktemp("cmp"), "label", CANDIDATES)
    document = yaml.safe_load((out / "shortlist.yaml").read_text())
    assert len(document["members"]) >= 2, document
    return out


def check_run(out, method: str) -> dict:
    """The ensemble run evaluates, exports with parity, and its graph bags every fold run."""
    from mlcycle.commands.evaluate import main as evaluate
    from mlcycle.commands.export import main as export

    record = json.loads((out / "ensemble.json").read_text())
    assert record["source"] == "shortlist" and record["method"] == method
    assert all(len(m["runs"]) == 2 for m in record["members"])  # both fold runs, bagged
    result = quiet(evaluate, ["--run", str(out), "--split", "test"])
    assert 0.5 < result["metrics"]["f1"] <= 1 and result["rows"] > 0
    report = quiet(export, ["--run", str(out)])["report"]
    assert report["passed"] and not report["rows_not_scored"]
    assert report["onnx"]["max_abs_prob_diff"] < 1e-4
    return record


def test_a_table_shortlist_ensembles_its_fold_runs_into_one_graph(comparison, tmp_path):
    out = ensemble("--shortlist", str(comparison / "shortlist.yaml"), "--out", str(tmp_path / "e"))
    record = check_run(out, "soft")
    task = Run(out).load_model()
    frame = quiet(lambda: Run(out).load_data(num_workers=0).frame("val"))
    members = quiet(task.member_scores, frame)
    want = np.mean(members, axis=0)  # soft: the mean of the bags' means
    assert np.abs(quiet(task.frame_scores, frame) - want).max() < 1e-5
    assert len(record["members"]) == members.shape[0]


def test_a_stacked_table_shortlist_is_cross_fitted_and_exported(comparison, tmp_path):
    out = ensemble(
        "--shortlist", str(comparison / "shortlist.yaml"),
        "--method", "stacking", "--out", str(tmp_path / "s"),
    )  # fmt: skip
    record = check_run(out, "stacking")
    assert record["combination"]["coef"] and record["combination"]["intercept"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert "cross-fitted over the comparison's folds" in metrics["scored_on"]
    stacked = record["methods"]["stacking"]
    assert stacked["scores"]["f1"] <= stacked["scores_in_sample"]["f1"] + 0.05


def test_a_regression_shortlist_stacks_with_ridge_or_greedy_weights(tmp_path):
    candidates = [
        {"name": "linear", "estimator": "linear", "args": [ONEHOT]},
        {"name": "tree", "estimator": "decision_tree", "params": {"max_depth": 3}},
    ]
    found = compare(tmp_path, "value", candidates)
    from mlcycle.commands.export import main as export

    out = ensemble("--shortlist", str(found / "shortlist.yaml"), "--method", "all",
                   "--out", str(tmp_path / "r"))  # fmt: skip
    record = json.loads((out / "ensemble.json").read_text())
    assert set(record["methods"]) == {"soft", "weighted", "stacking"}
    weights = record["methods"]["weighted"]["combination"]["weights"]  # greedy selection's
    assert abs(sum(weights) - 1) < 1e-6 and min(weights) >= 0
    report = quiet(export, ["--run", str(out)])["report"]
    assert report["passed"] and report["onnx"]["max_relative_diff"] < 1e-4


@pytest.mark.parametrize(
    "document, words",
    [
        ({"members": [{"name": "forest", "runs": []}]}, "lists no fold runs"),
        ({"members": [{"name": "ghost", "runs": ["/nowhere/fold0"]}]}, "ghost/fold0"),
        ({"rule": "none"}, "no members"),
    ],
)
def test_a_bad_table_shortlist_is_one_line(comparison, tmp_path, capsys, document, words):
    path = comparison / f"bad_{len(capsys.readouterr().err)}.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(SystemExit) as exit_:
        ensemble("--shortlist", str(path), "--out", str(tmp_path / "e"))
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], lines
    assert not (tmp_path / "e").exists()
