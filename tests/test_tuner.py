"""--find_lr and --find_batch_size: Lightning's tuner on tiny image folders, on the CPU."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch
import yaml
from conftest import run_train

from mlcycle.callbacks.finders import SKIP_BEGIN, steepest_descent


def train_split_size(run) -> int:
    with (run / "splits.csv").open() as fh:
        return sum(row["split"] == "train" for row in csv.DictReader(fh))


def test_find_lr_reports_and_does_not_train(image_folder, tmp_path, capsys):
    run = run_train(image_folder, tmp_path / "run", "--find_lr", "--find_lr_steps=20")
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == f"run directory: {run}"
    assert any(line.startswith("learning-rate finder: suggested lr ") for line in out)
    assert "not trained; train with --model.lr=" in out[-2]
    found = json.loads((run / "lr_finder.json").read_text())
    assert found["steps"] == 20 and len(found["curve"]) == 20 and not found["applied"]
    lrs = [p["lr"] for p in found["curve"]]
    assert lrs == sorted(lrs) and 1e-8 <= lrs[0] < lrs[-1] <= 1.0
    assert found["suggestion"] in lrs[SKIP_BEGIN:]
    assert (run / "lr_finder.png").stat().st_size > 5000
    # Nothing trained: no checkpoint, no metrics; the finder's temporary checkpoint is gone.
    assert not any((run / "checkpoints").iterdir()) and not (run / "metrics.json").exists()
    assert not list(run.glob(".lr_find_*"))
    assert yaml.safe_load((run / "config.yaml").read_text())["model"]["init_args"]["lr"] == 0.001


def test_find_lr_apply_trains_with_the_suggestion(image_folder, tmp_path):
    run = run_train(
        image_folder,
        tmp_path / "run",
        "--find_lr=apply",
        "--find_lr_steps=20",
        "--trainer.max_epochs=2",
    )
    suggestion = json.loads((run / "lr_finder.json").read_text())["suggestion"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["lr_finder"]["applied"] is True
    assert metrics["lr_finder"]["suggestion"] == suggestion
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model"]["init_args"]["lr"] == suggestion
    assert config["find_lr"] is False  # config.yaml reproduces the run, not the search
    ckpt = torch.load(run / "checkpoints/last.ckpt", weights_only=False)
    assert ckpt["hyper_parameters"]["lr"] == suggestion
    # The finder's 20 steps were undone: training starts from the initial weights and step 0.
    assert ckpt["global_step"] == 2 * (train_split_size(run) // 8)


def test_find_batch_size_reports_and_does_not_train(image_folder, tmp_path, capsys):
    run = run_train(
        image_folder, tmp_path / "run", "--find_batch_size", "--find_batch_size_trials=2"
    )
    out = capsys.readouterr().out
    assert "batch-size finder: batch size 4 ran without running out of memory" in out
    found = json.loads((run / "batch_size_finder.json").read_text())
    assert found["batch_size"] == 4 and found["mode"] == "power" and found["max_trials"] == 2
    assert found["configured_batch_size"] == 8 and "trials" in found["limited_by"]
    assert not (run / "metrics.json").exists()
    assert yaml.safe_load((run / "config.yaml").read_text())["data"]["init_args"]["batch_size"] == 8


def test_find_batch_size_apply_trains_with_it(image_folder, tmp_path):
    run = run_train(
        image_folder, tmp_path / "run", "--find_batch_size=apply", "--find_batch_size_trials=2"
    )
    assert yaml.safe_load((run / "config.yaml").read_text())["data"]["init_args"]["batch_size"] == 4
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["batch_size_finder"]["batch_size"] == 4
    ckpt = torch.load(run / "checkpoints/last.ckpt", weights_only=False)
    assert ckpt["global_step"] == train_split_size(run) // 4  # one epoch of batches of 4


def test_the_batch_size_search_stops_at_the_training_split(image_folder, tmp_path):
    run = run_train(image_folder, tmp_path / "run", "--find_batch_size")  # 6 trials: up to 64
    found = json.loads((run / "batch_size_finder.json").read_text())
    assert found["batch_size"] >= train_split_size(run) > found["batch_size"] // 2
    assert "training split" in found["limited_by"]


def test_finders_cannot_resume(image_folder, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_train(image_folder, tmp_path / "run", "--find_lr", "--ckpt_path=last")
    assert exit_info.value.code == 2
    assert "cannot resume" in capsys.readouterr().err


def test_steepest_descent_is_per_decade():
    """A loss that falls fastest around 1e-3 (per decade); Lightning's gradient against the
    rate itself would favour the first, most finely spaced points."""
    lrs = [10 ** (-8 + 8 * i / 99) for i in range(100)]
    losses = [2.0 - 1.5 / (1 + math.exp(-3 * (math.log10(lr) + 3))) for lr in lrs]
    losses = [v + (0.002 if i % 2 else 0) for i, v in enumerate(losses)]  # noise
    suggestion = steepest_descent(lrs, losses)
    assert 3e-4 < suggestion < 3e-3
    # After the lowest loss the curve climbs: points there are never suggested.
    rising = losses[:70] + [losses[69] + 0.5 * k for k in range(1, 31)]
    assert steepest_descent(lrs, rising) <= lrs[69]
    assert steepest_descent(lrs[:12], losses[:12]) is None
