"""Evaluation by slice: the metric per metadata value and per attribute bin, with intervals;
weak slices flagged, tiny ones too small, unknown columns named with the closest ones."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from mlcycle.core.errors import UserError
from mlcycle.core.objective import Objective
from mlcycle.evaluators.slice_columns import check_names, parse_names, quantile_bins, slice_keys
from mlcycle.evaluators.slice_run import judge_for
from mlcycle.evaluators.slices import Judge, SliceOptions, flag_lines, score_slices


def planted(n_good: int = 150, n_weak: int = 80, n_tiny: int = 6, seed: int = 0):
    """Three classes; camera ``a`` right 95% of the time, ``b`` 45%, ``c`` (tiny) never."""
    rng = np.random.default_rng(seed)
    cameras = ["a"] * n_good + ["b"] * n_weak + ["c"] * n_tiny
    target = rng.integers(0, 3, len(cameras))
    right = np.concatenate(
        [rng.random(n_good) < 0.95, rng.random(n_weak) < 0.45, np.zeros(n_tiny, bool)]
    )
    guess = np.where(right, target, (target + 1) % 3)
    probs = np.full((len(target), 3), 0.1)
    probs[np.arange(len(target)), guess] = 0.8
    return {"camera": cameras}, probs, target


def by_value(report: dict) -> dict[str, dict]:
    return {s["value"]: s for s in report["slices"]}


def test_a_planted_weak_slice_is_flagged_and_a_tiny_one_is_too_small():
    columns, probs, target = planted()
    report = score_slices(columns, probs, target, Judge("f1", "max", None, 0.05), SliceOptions())
    found = by_value(report)
    assert found["a"]["status"] == "ok"
    assert found["b"]["status"] == "flagged"
    assert "below the whole" in found["b"]["reasons"][0]
    assert found["c"]["status"] == "too_small" and found["c"]["n"] == 6
    assert found["c"]["low"] is None  # never judged, though every answer is wrong
    lines = flag_lines(report, "images")
    assert len([line for line in lines if "flagged" in line]) == 1
    assert "camera=b" in lines[0] and "1 slice(s) too small" in lines[1]


def test_intervals_contain_the_point_estimate_and_shrink_with_size():
    columns, probs, target = planted(n_good=400)
    report = score_slices(columns, probs, target, Judge("acc", "max", None, 0.05), SliceOptions())
    for s in [*report["slices"], {**report["whole"], "status": "ok"}]:
        if s["status"] != "too_small":
            assert s["low"] <= s["metric"] <= s["high"]
            assert s["high"] - s["low"] > 0
    found = by_value(report)
    width = {k: found[k]["high"] - found[k]["low"] for k in ("a", "b")}
    assert width["a"] < width["b"]  # 400 images against 80
    again = score_slices(columns, probs, target, Judge("acc", "max", None, 0.05), SliceOptions())
    assert again == report  # seeded


def test_the_objective_slice_min_flags_a_slice_under_it():
    columns, probs, target = planted(n_weak=60)
    judge = judge_for(Objective(metric="val/f1", min=0.5, slice_min=0.97), ("val/f1", "max"), 0.5)
    assert judge.minimum == 0.97
    found = by_value(score_slices(columns, probs, target, judge, SliceOptions()))
    assert found["a"]["status"] == "flagged" and found["a"]["reasons"] == ["below 0.97"]
    assert judge_for(Objective(min=0.8), ("val/f1", "max"), 0.05).minimum == 0.8
    assert judge_for(None, ("val/rmse", "min"), 0.05).name == "rmse"
    with pytest.raises(UserError, match="slice_min"):
        Objective(slice_min=97)


def test_regression_slices_flag_a_larger_error_by_a_relative_margin():
    rng = np.random.default_rng(1)
    target = rng.normal(10, 3, 200)
    noise = np.where(np.arange(200) < 100, 0.5, 3.0)
    pred = target + rng.normal(0, 1, 200) * noise
    group = ["calm" if i < 100 else "windy" for i in range(200)]
    report = score_slices(
        {"weather": group}, pred, target, Judge("rmse", "min", None, 0.1), SliceOptions()
    )
    found = by_value(report)
    assert found["windy"]["status"] == "flagged" and found["calm"]["status"] == "ok"
    assert "above the whole" in found["windy"]["reasons"][0]


def test_numeric_columns_are_cut_into_quantile_bins():
    values = list(range(100)) + [None]
    bins = quantile_bins(values, 4)
    assert len(set(bins)) == 5 and bins[-1] == "(missing)"
    assert bins[0] == "[0, 24.75)" and bins[99].endswith("]")
    keys, how = slice_keys(["x", "y", None, 3], 4)
    assert how == "value" and keys == ["x", "y", "(missing)", "3"]
    assert slice_keys([1.5 * i for i in range(40)], 4)[1] == "bins"


def test_a_metric_not_computed_per_slice_is_said_once():
    columns, probs, target = planted()
    report = score_slices(columns, probs, target, Judge("iou", "max", None, 0.05), SliceOptions())
    assert "iou is not computed per slice" in report["skipped"]
    assert flag_lines(report) == [f"  {report['skipped']}"]


def test_an_unknown_column_gets_the_closest_names():
    with pytest.raises(UserError) as caught:
        check_names(["camra"], ["camera", "brightness", "contrast"], "the data (--slices)")
    message = str(caught.value)
    assert "'camra'" in message and "closest: camera" in message and "\n" not in message
    assert parse_names("camera, brightness") == ["camera", "brightness"]
    assert parse_names("none") == [] and parse_names(None) is None
    with pytest.raises(UserError, match="min_samples"):
        SliceOptions(min_samples=0)


def manifest_images(root, count: int = 24):
    """A CSV manifest with a ``camera`` column; camera ``night`` images are dark."""
    root.mkdir()
    rows = ["path,label,camera"]
    rng = np.random.default_rng(0)
    for i in range(count):
        label, camera = ("a", "b")[i % 2], ("day", "night")[i % 3 == 0]
        pixels = (
            rng.integers(120, 255, (16, 16)) if camera == "day" else rng.integers(0, 40, (16, 16))
        )
        Image.fromarray(pixels.astype(np.uint8), mode="L").save(root / f"{i}.png")
        rows.append(f"{i}.png,{label},{camera}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root / "labels.csv"


def test_images_offer_their_metadata_and_attributes(tmp_path):
    from mlcycle.data.classification import ImageClassificationData
    from mlcycle.evaluators.slice_columns import slice_columns_of

    manifest = manifest_images(tmp_path / "data")
    data = ImageClassificationData(
        source="csv", manifest=str(manifest), image_size=16, index_cache=False, num_workers=0
    )
    part = slice_columns_of(data)
    assert part.names(data) == ["camera", "brightness", "contrast", "size", "aspect"]
    assert part.defaults(data) == part.names(data)
    positions = list(range(len(data.index.samples)))
    values = part.values(data, positions, ["camera", "brightness", "size"])
    night = [v < 60 for v in values["brightness"]]
    assert night == [c == "night" for c in values["camera"]]
    assert set(values["size"]) == {256}


def test_evaluate_writes_slices_the_card_shows_them_and_an_unknown_column_stops(
    trained_run, tmp_path, capsys
):
    import shutil

    from mlcycle.card.build import build_card
    from mlcycle.commands.evaluate import main

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    result = main(["--run", str(run), "--slice_min_samples=2"])
    folder = run / "slices_val"
    report = json.loads((folder / "slices.json").read_text())
    assert report["columns"] == ["brightness", "contrast", "size", "aspect"]
    assert (folder / "slices.csv").read_text().startswith("column,value,n,metric,low,high")
    assert (folder / "slices.png").stat().st_size > 0
    assert result["slices"]["metric"] == "f1"
    assert "slices:" in capsys.readouterr().out
    card = build_card(run, latency=False, resamples=50)
    assert "Evaluation by slice" in card and "brightness=[" in card
    with pytest.raises(SystemExit) as stop:
        main(["--run", str(run), "--slices", "brightnes"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "slice column 'brightnes'" in err and "closest: brightness" in err


def test_compare_scores_the_best_candidate_out_of_fold_per_slice(tmp_path, monkeypatch):
    from test_compare_tables import base_config, compare
    from test_tables_models import learnable_table

    monkeypatch.setenv("MLCYCLE_FIGURES", "inline")
    table = learnable_table(tmp_path / "rows.csv", rows=160)
    candidates = [{"name": "tree", "estimator": "decision_tree", "params": {"max_depth": 3}}]
    found = compare(tmp_path, base_config(tmp_path, table, "label"), candidates)
    report = json.loads((found["out"] / "slices" / "slices.json").read_text())
    assert report["candidate"] == "tree" and report["columns"] == ["colour", "flag"]
    assert {s["value"] for s in report["slices"]} == {"red", "green", "blue", "yes", "no"}
    assert report["whole"]["n"] == sum(s["n"] for s in report["slices"] if s["column"] == "flag")
    assert "Out-of-fold metric by slice" in (found["out"] / "leaderboard.html").read_text()
