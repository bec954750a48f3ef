"""trainer.logger: TensorBoard in the run directory by default, the config's loggers when it
names them (never replaced without a word), none with false; the run directory's own record
(history.csv, metrics.json, figures) is the same either way."""

from __future__ import annotations

import csv

from conftest import run_train


def _history(run):
    with open(run / "history.csv") as f:
        return list(csv.DictReader(f))


def test_the_default_logger_is_tensorboard_in_the_run(image_folder, tmp_path, capsys):
    run = run_train(image_folder, tmp_path / "run")
    assert any((run / "tensorboard").glob("events.out.tfevents.*"))
    assert f"tensorboard --logdir {run}" in capsys.readouterr().out
    assert "lr-AdamW" in _history(run)[0]


def test_a_configured_logger_is_kept(image_folder, tmp_path, capsys):
    logs = tmp_path / "csvlogs"
    run = run_train(
        image_folder,
        tmp_path / "run",
        "--trainer.logger=lightning.pytorch.loggers.CSVLogger",
        f"--trainer.logger.save_dir={logs}",
    )
    written = list(logs.rglob("metrics.csv"))
    assert len(written) == 1 and "val/f1" in written[0].read_text()
    assert not (run / "tensorboard").exists()
    assert f"CSVLogger in {written[0].parent}" in capsys.readouterr().out
    assert (run / "metrics.json").is_file() and (run / "loss_curves.png").is_file()
    assert "lr-AdamW" in _history(run)[0]


def test_no_logger_keeps_the_run_record(image_folder, tmp_path, capsys):
    run = run_train(image_folder, tmp_path / "run", "--trainer.logger=false")
    assert not (run / "tensorboard").exists()
    assert "tensorboard" not in capsys.readouterr().out
    assert (run / "metrics.json").is_file() and len(_history(run)) == 1
