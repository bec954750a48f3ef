"""mlcycle learning-curve: nested stratified subsets of each fold, the power law and its
bootstrap, the flat verdict, and the command on tiny images (a classic model fitted in-process)
and a tiny table (train.py runs scored on their train split by the evaluator)."""

from __future__ import annotations

import contextlib
import csv
import html
import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import tree_digest, write_folder

from mlcycle.core.errors import UserError
from mlcycle.selection.curve.fit import fit_curve, fit_power_law
from mlcycle.selection.curve.report import summarize
from mlcycle.selection.curve.sizes import check_sizes
from mlcycle.selection.curve.subsets import pool_at
from mlcycle.selection.folds import UNUSED, Pool, assign_folds


def fake_pool(labels: list[int], folds: int = 3) -> Pool:
    keys = [f"sample{i:03d}" for i in range(len(labels))]
    fold_of = assign_folds(keys, [str(x) for x in labels], folds, seed=7)
    return Pool(None, list(range(len(keys))), keys, np.asarray(labels), np.asarray(fold_of),
                ["a", "b", "c"], "digest")  # fmt: skip


def train_keys(pool: Pool, fold: int) -> set[str]:
    return {key for key, role in pool.roles(fold).items() if role == "train"}


def test_subsets_are_nested_stratified_and_keep_the_fold_whole():
    labels = [0] * 60 + [1] * 30 + [2] * 12  # imbalanced
    base = fake_pool(labels)
    label_of = dict(zip(base.paths, labels, strict=True))
    shares = [0.1, 0.25, 0.5, 1.0]
    pools = {s: pool_at(base, 3, s, seed=5) for s in shares}
    for fold in range(3):
        full = train_keys(base, fold)
        val = {k for k, r in base.roles(fold).items() if r == "val"}
        previous: set[str] = set()
        for share in shares:
            pool, counts = pools[share]
            kept = train_keys(pool, fold)
            assert previous <= kept <= full  # nested, inside the fold's training samples
            assert counts[fold] == len(kept)
            assert {k for k, r in pool.roles(fold).items() if r == "val"} == val
            assert {k for k, r in pool.roles(fold).items() if r == UNUSED} == full - kept
            have, whole = Counter(label_of[k] for k in kept), Counter(label_of[k] for k in full)
            for label, n in whole.items():  # each class keeps its share (rounded, at least 1)
                assert have[label] == max(1, round(share * n))
            train_rows, _ = pool.fold_rows(fold)
            assert {pool.paths[r] for r in train_rows} == kept
            previous = kept
    # the same seed draws the same subsets; another seed other ones
    assert train_keys(pool_at(base, 3, 0.25, seed=5)[0], 0) == train_keys(pools[0.25][0], 0)
    assert train_keys(pool_at(base, 3, 0.25, seed=6)[0], 0) != train_keys(pools[0.25][0], 0)


def test_regression_targets_are_stratified_by_quantile():
    base = fake_pool([0] * 50)  # one class for the folds
    values = np.linspace(0, 100, 50)
    base.target = values
    pool, _ = pool_at(base, 3, 0.2, seed=1)
    kept = [values[base.paths.index(k)] for k in train_keys(pool, 0)]
    assert min(kept) < 35 and max(kept) > 65  # spread over the range, not one end


def test_sizes_outside_zero_one_are_refused():
    assert check_sizes([1.0, 0.1, 0.5, 0.1]) == [0.1, 0.5, 1.0]
    for bad in ([0.0], [0.5, 1.5], [-0.1], []):
        with pytest.raises(UserError, match="in \\(0, 1\\]"):
            check_sizes(bad)


def test_power_law_recovers_planted_parameters():
    n = np.array([100, 200, 400, 800, 1600, 3200], float)
    truth = (2.0, 0.5, 0.05)
    exact = truth[0] * n ** -truth[1] + truth[2]
    assert np.allclose(fit_power_law(n, exact), truth, rtol=1e-3)
    rng = np.random.default_rng(0)
    noisy = exact[:, None] + rng.normal(0, 0.002, (len(n), 5))
    curve = fit_curve(n, noisy, seed=0)
    a, b, c = curve.params
    assert abs(b - 0.5) < 0.1 and abs(c - 0.05) < 0.01 and 1.0 < a < 4.0
    true_gain = truth[0] * 3200**-0.5 * (1 - 2**-0.5)
    low, high = curve.gain_interval(3200)
    assert low <= true_gain <= high and high - low < 0.01
    assert not curve.flat
    assert fit_curve(n[:2], noisy[:2]) is None  # three sizes at least


def records(errors: np.ndarray, n: list[int], sizes: list[float]) -> list[dict]:
    return [
        {"size": s, "fold": f, "n_train": n[i], "val": 1 - errors[i, f], "train": 1.0,
         "error": None}
        for i, s in enumerate(sizes)
        for f in range(errors.shape[1])
    ]  # fmt: skip


def test_a_flat_curve_is_said_to_be_flat_and_a_steep_one_is_not():
    rng = np.random.default_rng(3)
    sizes, n = [0.1, 0.25, 0.5, 1.0], [100, 250, 500, 1000]
    flat = 0.1 + rng.normal(0, 0.01, (4, 5))
    summary = summarize(records(flat, n, sizes), "knn", "f1", "max")
    assert summary["twice"]["flat"] is True
    assert summary["line"].startswith("flat: twice the data (2000 samples)")
    assert "\n" not in summary["line"]
    steep = 3.0 * np.array(n, float)[:, None] ** -0.5 + rng.normal(0, 0.002, (4, 5))
    summary = summarize(records(steep, n, sizes), "svc", "f1", "max")
    twice = summary["twice"]
    assert twice["flat"] is False and twice["change"] > 0.01
    assert twice["interval"][0] > 0 and summary["line"].startswith("twice the data")
    assert twice["expected"] > twice["fitted_now"]
    # a lower-is-better metric: the change is a drop
    losses = records(steep, n, sizes)
    for r in losses:
        r["val"] = 1 - r["val"]
    assert summarize(losses, "svc", "loss", "min")["twice"]["change"] < 0


def write_comparison(folder: Path, data: Path) -> Path:
    config = {
        "train": ["configs/image_folder.yaml"],
        "args": [f"--data.root={data}", "--data.image_size=16", "--trainer.max_epochs=1"],
        "folds": 2,
        "classic_size": 16,
        "candidates": [
            {"name": "logistic", "estimator": "sklearn.linear_model.LogisticRegression"},
            {"name": "knn", "estimator": "sklearn.neighbors.KNeighborsClassifier"},
        ],
    }
    path = folder / "cmp.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def fold_roles(path: Path) -> dict[str, str]:
    with path.open(newline="") as fh:
        return {row["path"]: row["split"] for row in csv.DictReader(fh)}


def test_learning_curve_of_a_classic_candidate_on_images(tmp_path, capsys):
    from mlcycle.commands.learning_curve import main

    data = write_folder(tmp_path / "images", per_class=16)
    before = tree_digest(data)
    config = write_comparison(tmp_path, data)
    out = tmp_path / "curve"
    argv = ["--config", str(config), "--candidate", "logistic", "--out", str(out)]
    summary = main([*argv, "--sizes", "[0.25, 0.5, 1.0]"])
    assert tree_digest(data) == before  # the user's images untouched
    for name in ("learning_curve.json", "learning_curve.csv", "learning_curve.png"):
        assert (out / name).stat().st_size > 0
    assert html.escape(summary["line"]) in (out / "learning_curve.html").read_text()
    assert json.loads((out / "learning_curve.json").read_text())["sizes"] == [0.25, 0.5, 1.0]
    points = summary["points"]
    assert len(points) == 6 and all(p["val"] is not None and p["train"] is not None for p in points)
    counts = {s: [p["n_train"] for p in points if p["size"] == s] for s in (0.25, 0.5, 1.0)}
    assert all(a < b < c for a, b, c in zip(*counts.values(), strict=True))
    with (out / "learning_curve.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == 6
    # the fold files: nested training images, the same validation images at every size
    small, large = (fold_roles(out / f"size_{s}" / "folds" / "fold0.csv") for s in (25, 100))
    assert {k for k, r in small.items() if r == "train"} < {
        k for k, r in large.items() if r == "train"
    }
    assert {k for k, r in small.items() if r == "val"} == {
        k for k, r in large.items() if r == "val"
    }
    err = capsys.readouterr().err
    assert "25% (" in err and "100% (" in err  # a line per size while training
    # resumed: every fold is kept
    with contextlib.redirect_stdout(io.StringIO()):
        again = main([*argv, "--sizes", "[0.25, 0.5, 1.0]"])
    assert [p["val"] for p in again["points"]] == [p["val"] for p in points]


def test_bad_input_is_one_line(tmp_path, capsys):
    from mlcycle.commands.learning_curve import main

    config = write_comparison(tmp_path, write_folder(tmp_path / "images", per_class=4))
    cases = [
        (["--candidate", "logistc"], "no such candidate", "closest: logistic"),
        (["--candidate", "knn", "--sizes", "[0.5, 1.5]"], "--sizes 1.5", "(0, 1]"),
        ([], "has 2 candidates", "--candidate NAME"),
    ]
    for extra, first, second in cases:
        with pytest.raises(SystemExit) as exit_info:
            main(["--config", str(config), "--out", str(tmp_path / "o"), *extra])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and first in err and second in err and "\n" not in err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_learning_curve_of_a_table_candidate_scores_its_runs(tmp_path):
    from test_compare_tables import base_config
    from test_tables_models import learnable_table

    from mlcycle.commands.learning_curve import main

    table = learnable_table(tmp_path / "rows.csv", rows=160)
    train = base_config(tmp_path, table, "label")
    spec = {"train": [str(train)], "folds": 2,
            "candidates": [{"name": "forest", "estimator": "random_forest",
                            "params": {"n_estimators": 20}}]}  # fmt: skip
    config = tmp_path / "cmp.yaml"
    config.write_text(yaml.safe_dump(spec))
    out = tmp_path / "curve"
    with contextlib.redirect_stdout(io.StringIO()):
        summary = main(["--config", str(config), "--out", str(out), "--sizes", "[0.5, 1]"])
    points = summary["points"]
    assert len(points) == 4 and all(p["error"] is None for p in points), points
    assert all(p["train"] > 0.9 for p in points)  # a forest fits its own rows
    assert all(0.3 < p["val"] <= 1 for p in points)
    assert summary["fit"] is None and "needs 3 sizes" in summary["line"]
    run = out / "size_50" / "candidates" / "forest" / "fold0"
    assert (run / "curve_train.json").is_file() and (run / "metrics.json").is_file()
