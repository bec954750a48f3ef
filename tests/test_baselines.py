"""Dummy baselines: majority and stratified, mean and median, the empty prediction; in the fit
diagnosis, evaluate.py and compare.py's leaderboard, never short-listed."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from sklearn.metrics import f1_score
from test_compare_tables import base_config, compare
from test_tables_models import learnable_table, train

from mlcycle.callbacks.baselines import baseline_finding, class_probs, not_beaten
from mlcycle.selection.compare.baselines import run_baselines
from mlcycle.tasks.classification import class_baselines


@pytest.fixture(scope="module", autouse=True)
def inline_figures():
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLCYCLE_FIGURES", "inline")
        yield


def test_majority_and_stratified_on_an_imbalanced_set():
    train_y = np.array([0] * 16 + [1] * 3 + [2] * 1)
    target = np.array([0] * 8 + [1] * 2 + [2] * 2)
    found = class_baselines(train_y, target, 3)
    expected = f1_score(target, np.zeros_like(target), average="macro", labels=[0, 1, 2])
    assert found["majority"]["f1"] == pytest.approx(expected, abs=1e-6)  # 0.8/1.8*2/3 ~ 0.296
    assert found["majority"]["acc"] == pytest.approx(8 / 12)
    assert found["majority"]["error"] == pytest.approx(4 / 12)
    assert class_baselines(train_y, target, 3) == found  # the stratified draws are seeded
    drawn = class_probs(train_y, 2000, 4)["stratified"]  # class 3 never seen in train: 0
    assert drawn.shape == (2000, 4) and drawn[:, 3].sum() == 0
    assert np.bincount(drawn.argmax(1), minlength=4)[0] / 2000 == pytest.approx(0.8, abs=0.04)
    assert class_baselines(train_y, [], 3) == {}


def test_empty_segmentation_scores_the_background_everywhere():
    from mlcycle.tasks.segmentation import SegmentationTask

    task = SegmentationTask(num_classes=3, in_channels=3, class_names=["bg", "a", "b"])
    masks = {0: np.zeros((4, 4), np.uint8), 1: np.zeros((4, 4), np.uint8)}
    masks[0][:2] = 1  # half of image 0 is class a
    masks[1][0, 0] = 255  # ignored
    data = SimpleNamespace(
        index=SimpleNamespace(positions={"val": [0, 1], "train": []}),
        raw_pair=lambda p: (None, masks[p]),
    )
    empty = task.baselines(data, "val")["empty"]
    # background: 23 pixels right of 31 counted; class a: 8 pixels, none predicted
    assert empty["acc"] == pytest.approx(23 / 31, abs=1e-5)
    assert empty["iou"] == pytest.approx((23 / 31 + 0) / 2, abs=1e-5)  # b absent: not averaged
    assert (
        task.baselines(SimpleNamespace(index=SimpleNamespace(positions={"val": []})), "val") == {}
    )


def test_empty_detection_scores_no_box():
    from mlcycle.tasks.detection import DetectionTask

    task = DetectionTask(num_classes=1, in_channels=3, class_names=["thing"])
    targets = [{"boxes": torch.tensor([[1.0, 1.0, 5.0, 5.0]]), "labels": torch.tensor([0])}]
    data = SimpleNamespace(split_dataloader=lambda split: [(None, targets * 2, None)])
    empty = task.baselines(data, "val")["empty"]
    assert empty["map"] == 0 and empty["map_50"] == 0


def test_a_model_that_does_not_beat_its_baseline_is_named():
    found = {"majority": {"f1": 0.22}, "stratified": {"f1": 0.2}}
    rows = [{"epoch": 1, "val/f1": 0.18}, {"epoch": 2, "val/f1": 0.21}]
    low = baseline_finding(rows, "val/f1", "max", found)
    assert low.kind == "below_baseline" and low.epoch == 2
    assert (
        low.message == "the best model (val/f1 0.2100) does not beat the majority baseline (0.2200)"
    )
    good = baseline_finding([{"epoch": 1, "val/f1": 0.5}], "val/f1", "max", found)
    assert good.kind == "baseline" and "majority 0.2200, stratified 0.2000" in good.message
    errors = {"mean": {"rmse": 2.0}, "median": {"rmse": 1.9}}
    line = not_beaten("candidate tree", "val/rmse", 1.95, errors, "min")
    assert line == "candidate tree (val/rmse 1.9500) does not beat the median baseline (1.9000)"
    assert not_beaten("candidate tree", "val/rmse", 1.5, errors, "min") is None
    assert baseline_finding(rows, "val/f1", "max", {}) is None


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    return learnable_table(tmp_path_factory.mktemp("table") / "rows.csv", rows=160)


def test_train_and_evaluate_show_the_regression_baselines(tmp_path, table):
    from mlcycle.commands.evaluate import main as evaluate

    run = train(tmp_path, table, "value", "--model.hidden=[16]", "--model.lr=0.02")
    diagnosis = json.loads((run / "metrics.json").read_text())["diagnosis"]
    line = next(f for f in diagnosis if f["kind"] in ("baseline", "below_baseline"))
    assert set(line["values"]["baselines"]) == {"mean", "median"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        evaluate(["--run", str(run)])
    result = json.loads((run / "eval_val.json").read_text())
    mean = result["baselines"]["mean"]
    assert abs(mean["r2"]) < 0.1 and mean["rmse"] > result["metrics"]["rmse"]
    assert result["baselines"] == line["values"]["baselines"]  # the same split, the same figures
    assert "baselines (val rmse): mean " in out.getvalue()


def test_compare_leaderboard_carries_the_baselines_and_never_shortlists_them(tmp_path, table):
    candidates = [
        {"name": "forest", "estimator": "random_forest", "params": {"n_estimators": 20}},
        {
            "name": "constant",
            "estimator": "sklearn.dummy.DummyClassifier",
            "params": {"strategy": "constant", "constant": 0},
        },
    ]
    done = compare(tmp_path, base_config(tmp_path, table, "label"), candidates)
    out, summary = done["out"], done["summary"]
    assert [r["candidate"] for r in summary["rows"]] == ["forest", "constant"]  # ranked ones
    dummies = {b["candidate"]: b for b in summary["baselines"]}
    assert set(dummies) == {"majority", "stratified"}
    assert all(b["kind"] == "baseline" for b in dummies.values())
    # the majority baseline, by hand on the same folds
    oof = np.load(out / "candidates" / "forest" / "oof.npz")
    target, folds = oof["target"], oof["folds"]
    by_hand = []
    for fold in range(2):
        top = np.bincount(target[folds != fold]).argmax()
        held = target[folds == fold]
        by_hand.append(f1_score(held, np.full_like(held, top), average="macro", labels=[0, 1, 2]))
    assert dummies["majority"]["mean"] == pytest.approx(np.mean(by_hand), abs=1e-5)
    rows = list(csv.DictReader((out / "leaderboard.csv").open()))
    kinds = {r["candidate"]: r["kind"] for r in rows}
    assert kinds == {"forest": "candidate", "constant": "candidate", "majority": "baseline",
                     "stratified": "baseline"}  # fmt: skip
    assert all(r["rank"] == "" for r in rows if r["kind"] == "baseline")
    shortlist = yaml.safe_load((out / "shortlist.yaml").read_text())
    assert {m["name"] for m in shortlist["members"]} <= {"forest", "constant"}
    notes = (out / "leaderboard.md").read_text()
    assert "candidate constant (val/f1 " in notes and "does not beat the " in notes
    assert "candidate forest (" not in notes  # it learned


def test_a_run_scored_comparison_reads_its_fold_runs_baselines(tmp_path):
    (tmp_path / "metrics.json").write_text(
        json.dumps(
            {"diagnosis": [{"kind": "baseline", "values": {"baselines": {"empty": {"iou": 0.4}}}}]}
        )
    )
    assert run_baselines(tmp_path) == {"empty": {"iou": 0.4}}
    assert run_baselines(tmp_path / "missing") == {}
