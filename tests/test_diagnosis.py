"""Why a run is not learning: the rules on made-up epochs, the chance floors against
torchmetrics, and real runs on tiny image folders that diverge, stay flat, or learn."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import run_train
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torchmetrics.classification import MulticlassF1Score, MulticlassJaccardIndex

from mlcycle.callbacks.chance import (
    Chance,
    classification_acc,
    classification_f1,
    segmentation_iou,
    uniform_loss,
)
from mlcycle.callbacks.diagnosis import conclude


def epochs(train, val, f1=None, grad=None, grad_max=None):
    out = []
    for i, (t, v) in enumerate(zip(train, val, strict=True)):
        row = {"epoch": i + 1, "train/loss": t, "val/loss": v}
        if f1 is not None:
            row["val/f1"] = f1[i]
        if grad is not None:
            row["train/grad_norm_mean"] = grad[i]
            row["train/grad_norm_max"] = (grad_max or grad)[i]
        out.append(row)
    return out


TEN = Chance(
    "val/f1",
    classification_f1([100] * 10),
    uniform_loss([100] * 10),
    "misclassified.png",
)


def kinds(findings):
    return [f.kind for f in findings]


# --- the rules ---------------------------------------------------------------------------------


def test_a_healthy_run_is_called_learning_with_its_distance_to_chance():
    found = conclude(
        epochs([1.4, 0.45, 0.39, 0.35], [1.3, 0.41, 0.42, 0.36], [0.72, 0.978, 0.977, 0.992]),
        "val/f1",
        "max",
        TEN,
    )
    assert kinds(found) == ["learning"]
    assert found[0].epoch == 4 and found[0].next_step is None
    assert found[0].line().startswith("learning (epoch 4): val f1 0.9920 vs chance 0.1000")
    assert found[0].values["chance"] == pytest.approx(0.1)


def test_diverging_when_the_loss_is_far_above_an_untrained_models():
    """lr=1e4 on the quick start: the losses fall from epoch 1, but stay in the hundreds, far
    above ln(10), where an untrained model starts."""
    found = conclude(
        epochs(
            [1265029.6, 1832.8, 1548491.2, 448.8],
            [1689.3, 1627.4, 1021.7, 152.9],
            [0.019, 0.023, 0.021, 0.016],
        ),
        "val/f1",
        "max",
        TEN,
    )
    assert kinds(found) == ["diverging", "at_chance"]
    diverging, low = found
    assert diverging.epoch == 4 and "lower the learning rate" in diverging.next_step
    assert diverging.values["chance loss"] == pytest.approx(math.log(10))
    assert low.epoch == 2 and low.values["val/f1"] == 0.023
    assert "lower the learning rate: run --find_lr" in low.next_step


@pytest.mark.parametrize(
    ("train", "val", "why"),
    [
        ([1.0, 1.2, 1.3], [1.0, 0.99, 0.98], "above the first epoch"),
        ([1.0, 1.0, 0.99], [1.0, 1.15, 1.2], "train loss did not fall"),
        ([2.0, 1.0, 1.02, 1.05, 1.09], [2.0, 1.0, 1.0, 1.0, 1.0], "grew 3 epochs running"),
    ],
)
def test_diverging_when_the_loss_rises(train, val, why):
    found = conclude(epochs(train, val), "val/loss", "min", None)
    assert kinds(found) == ["diverging"] and why in found[0].message


def test_val_loss_rising_while_train_loss_falls_is_not_divergence():
    found = conclude(
        epochs([1.0, 0.5, 0.2], [1.0, 1.2, 1.3], [0.5, 0.6, 0.6]), "val/f1", "max", TEN
    )
    assert kinds(found) == ["learning"]


def test_flat_loss_says_raise_the_learning_rate():
    found = conclude(
        epochs([2.477, 2.471, 2.465, 2.460], [2.299, 2.301, 2.339, 2.352], [0.02] * 4),
        "val/f1",
        "max",
        TEN,
    )
    assert kinds(found) == ["flat", "at_chance"]
    assert all("raise the learning rate" in f.next_step for f in found)


def test_a_model_that_learned_in_its_first_epoch_is_not_flat():
    found = conclude(epochs([0.3, 0.3, 0.3], [0.25, 0.25, 0.25], [0.97] * 3), "val/f1", "max", TEN)
    assert kinds(found) == ["learning"]


def test_at_chance_without_loss_trouble_points_at_the_labels():
    found = conclude(
        epochs([2.3, 1.0, 0.5], [2.3, 2.2, 2.25], [0.05, 0.09, 0.1]), "val/f1", "max", TEN
    )
    assert kinds(found) == ["at_chance"]
    assert "misclassified.png" in found[0].next_step and found[0].epoch == 3


@pytest.mark.parametrize(
    ("grad", "grad_max", "kind", "epoch"),
    [
        ([2.0, 1.5, 1.0], [5.0, 3.0, 5000.0], "exploding_gradients", 3),  # above 1e3
        ([2.0, 0.01, 1.0], [5.0, 0.02, 3.0], "exploding_gradients", 3),  # 300x the lowest mean
        ([2.0, 1e-4, 1e-4], [5.0, 2e-4, 2e-4], "vanishing_gradients", 2),  # 1/20000, loss high
        ([2.0, 1e-8, 1e-8], [5.0, 1e-8, 1e-8], "vanishing_gradients", 2),  # below 1e-6
    ],
)
def test_gradient_rules(grad, grad_max, kind, epoch):
    rows = epochs([2.3, 2.2, 2.1], [2.3, 2.2, 2.1], [0.5, 0.6, 0.7], grad, grad_max)
    found = conclude(rows, "val/f1", "max", TEN)
    hit = [f for f in found if f.kind == kind]
    assert hit and hit[0].epoch == epoch, kinds(found)
    assert "learning" not in kinds(found)


def test_healthy_gradients_are_not_flagged():
    rows = epochs(
        [1.4, 0.5, 0.4], [1.3, 0.4, 0.4], [0.7, 0.98, 0.99], [3.8, 1.5, 0.6], [5.7, 2.4, 1.1]
    )
    assert kinds(conclude(rows, "val/f1", "max", TEN)) == ["learning"]


# --- the chance floors match what torchmetrics scores for a model that learned nothing ---------


def test_classification_floors_match_torchmetrics():
    counts = [50, 30, 20]
    target = torch.tensor(sum(([c] * n for c, n in enumerate(counts)), []))
    majority = torch.zeros_like(target)  # always class 0
    scored = float(MulticlassF1Score(3, average="macro")(majority, target))
    floors = classification_f1(counts)
    assert floors["majority class"] == pytest.approx(scored, abs=1e-6)
    assert classification_f1([10] * 4)["uniform guess (1/4)"] == pytest.approx(0.25)
    assert classification_acc(counts) == {"majority class": 0.5, "uniform guess (1/3)": 1 / 3}
    assert Chance("val/f1", floors).value == max(floors.values())


def test_segmentation_floor_matches_torchmetrics():
    counts = [700, 200, 100]  # pixels per class
    target = torch.tensor(sum(([c] * n for c, n in enumerate(counts)), [])).reshape(1, 10, 100)
    everywhere = torch.zeros_like(target)
    scored = float(MulticlassJaccardIndex(3, average="macro")(everywhere, target))
    assert segmentation_iou(counts)["majority class everywhere"] == pytest.approx(scored, abs=1e-6)


# --- real runs ---------------------------------------------------------------------------------


def last_err_line(capsys) -> tuple[list[str], str]:
    captured = capsys.readouterr()
    return captured.out.strip().splitlines(), captured.err.strip().splitlines()[-1]


def test_a_diverging_run_warns_and_records_why(image_folder, tmp_path, capsys):
    run = run_train(image_folder, tmp_path / "run", "--model.lr=1e4", "--trainer.max_epochs=2")
    out, last = last_err_line(capsys)
    assert last.startswith("warning: the model did not learn: best val/f1 ")
    assert "diverging" in last and "lower the learning rate" in last
    assert out[-1] == f"run directory: {run}"
    assert any(line.startswith("diagnosis: diverging (epoch 2): ") for line in out)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "finished" and metrics["learned"] is False
    found = {f["kind"]: f for f in metrics["diagnosis"]}
    assert {"diverging", "at_chance"} <= found.keys()
    low = found["at_chance"]
    # the "did not learn" text is said once: in the last line, not also as a diagnosis line
    assert not any(low["message"] in line for line in out)
    assert low["epoch"] == metrics["best_epoch"]
    assert low["values"]["val/f1"] == pytest.approx(metrics["val/f1"], abs=1e-5)
    assert low["values"]["chance"] > 0.3  # three classes
    assert set(low) == {"kind", "epoch", "message", "next_step", "values", "scope"}


def test_strict_learning_exits_1_after_writing_metrics(image_folder, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_train(
            image_folder,
            tmp_path / "run",
            "--model.lr=1e4",
            "--trainer.max_epochs=2",
            "--strict_learning",
        )
    assert exit_info.value.code == 1
    _, last = last_err_line(capsys)
    assert last.startswith("error: the model did not learn: ") and "[--strict_learning]" in last
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["learned"] is False and metrics["status"] == "finished"


def test_a_flat_run_is_told_to_raise_the_learning_rate(image_folder, tmp_path, capsys):
    # One batch holds the whole train split and nothing is augmented: with lr=1e-9 the train
    # loss is the same every epoch.
    run = run_train(
        image_folder,
        tmp_path / "run",
        "--model.lr=1e-9",
        "--trainer.max_epochs=3",
        "--data.train_transforms=[]",
        "--data.batch_size=64",
    )
    _, last = last_err_line(capsys)
    assert last.startswith("warning: the model did not learn") and "(flat)" in last
    found = {f["kind"]: f for f in json.loads((run / "metrics.json").read_text())["diagnosis"]}
    assert found["flat"]["epoch"] == 3 and "raise the learning rate" in found["flat"]["next_step"]
    assert "raise the learning rate" in found["at_chance"]["next_step"]


def test_a_learning_run_says_so_and_logs_the_gradient_norm(image_folder, tmp_path, capsys):
    run = run_train(
        image_folder,
        tmp_path / "run",
        "--model.lr=0.01",
        "--trainer.max_epochs=3",
        "--trainer.log_every_n_steps=1",
        "--strict_learning=true",  # passes: the run learned
    )
    captured = capsys.readouterr()
    assert "did not learn" not in captured.err
    out = captured.out.strip().splitlines()
    assert out[-1] == f"run directory: {run}"
    assert out[-3].startswith("diagnosis: learning (epoch ") and " vs chance 0.33" in out[-3]
    assert (
        out[-2].startswith("diagnosis: baseline (epoch ") and " vs baselines majority " in out[-2]
    )
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["learned"] is True
    kinds = [f["kind"] for f in metrics["diagnosis"] if f["scope"] == "run"]
    assert kinds == ["learning", "baseline"]
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert {"train/grad_norm", "train/grad_norm_mean", "train/grad_norm_max"} <= set(
        events.Tags()["scalars"]
    )
    steps = events.Scalars("train/grad_norm")
    assert len(steps) >= 6 and all(s.value > 0 for s in steps)  # 3 epochs of 3 batches
    per_epoch = events.Scalars("train/grad_norm_max")
    assert len(per_epoch) == 3
    header = (run / "history.csv").read_text().splitlines()[0]
    assert "train/grad_norm_mean" in header
