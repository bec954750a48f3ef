"""compare.py by slice: the YAML's slices, slice_margin and slice_min_samples mean what
evaluate.py's options mean, fail in the same one line, and the summary is in leaderboard.json."""

from __future__ import annotations

import json

import pytest
from test_compare_tables import base_config, compare
from test_tables_models import learnable_table

TREE = [{"name": "tree", "estimator": "decision_tree", "params": {"max_depth": 3}}]


@pytest.fixture(scope="module")
def train(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cmp_slices")
    return base_config(folder, learnable_table(folder / "rows.csv", rows=160), "label")


def test_compare_slices_by_the_named_columns_into_the_leaderboard(tmp_path, train):
    found = compare(tmp_path, train, TREE, slices=["flag", "x1"], slice_min_samples=50)
    board = json.loads((found["out"] / "leaderboard.json").read_text())
    record = board["slices"]
    assert record == found["summary"]["slices"]
    assert record["candidate"] == "tree" and record["columns"] == ["flag", "x1"]
    assert record["metric"] == "f1"
    # x1 is cut into 4 quantile bins of 37 rows: each under 50, too small; flag's two are not
    assert record["too_small"] == 4
    report = json.loads((found["out"] / "slices" / "slices.json").read_text())
    statuses = {s["column"]: set() for s in report["slices"]}
    for s in report["slices"]:
        statuses[s["column"]].add(s["status"])
    assert statuses["x1"] == {"too_small"} and "too_small" not in statuses["flag"]


def test_compare_slices_none_writes_no_slices(tmp_path, train):
    found = compare(tmp_path, train, TREE, slices="none")
    assert "slices" not in json.loads((found["out"] / "leaderboard.json").read_text())
    assert not (found["out"] / "slices").exists()


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"slices": ["colr"]}, ["slice column 'colr'", "closest: colour"]),
        ({"slice_margin": -0.1}, ["slices: min_samples", "margin at least 0"]),
        ({"slice_min_samples": 0}, ["slices: min_samples", "(got 0,"]),
    ],
)
def test_bad_slice_keys_are_one_line_before_any_fit(tmp_path, train, capsys, extra, words):
    with pytest.raises(SystemExit) as stop:
        compare(tmp_path, train, TREE, **extra)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and all(w in err for w in words), err
    assert not (tmp_path / "out" / "candidates").exists()
