"""Figures drawn off the training path: a low-priority worker process, with an inline fallback."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from lightning.pytorch import Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mlcycle.reports import figure_worker
from mlcycle.reports.figures import confusion_matrix_figure, gallery_figure


def make_trainer(tmp_path):
    logger = TensorBoardLogger(str(tmp_path), name="tensorboard", version="")
    return Trainer(default_root_dir=str(tmp_path), logger=logger, enable_progress_bar=False)


def matrix_inputs(title: str) -> dict:
    return {"matrix": np.array([[3, 1], [0, 4]]), "class_names": ["a", "b"], "title": title}


def image_steps(tmp_path, tag):
    events = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    return [e.step for e in events.Images(tag)] if tag in events.Tags()["images"] else []


def test_figures_are_drawn_by_a_low_priority_worker_and_reach_tensorboard(tmp_path):
    trainer = make_trainer(tmp_path)
    path = figure_worker.draw_later(
        trainer, "cm.png", confusion_matrix_figure, matrix_inputs("first"), tag="val/cm"
    )
    images = {"images": [np.zeros((8, 8, 3), np.uint8)], "captions": ["x"], "title": "t"}
    figure_worker.draw_later(trainer, "gallery.png", gallery_figure, images)
    figure_worker.finish(trainer)
    worker = figure_worker._worker
    assert worker is not None and worker.alive  # niced once it has started
    assert os.getpriority(os.PRIO_PROCESS, worker.proc.pid) > os.getpriority(os.PRIO_PROCESS, 0)
    assert path.stat().st_size > 1000 and (tmp_path / "gallery.png").stat().st_size > 1000
    assert not list(tmp_path.glob("*.tmp.png"))  # written atomically, nothing left behind
    trainer.logger.experiment.flush()
    assert image_steps(tmp_path, "val/cm") == [0]


def test_a_failing_figure_is_a_warning_and_the_others_are_drawn(tmp_path, capsys):
    trainer = make_trainer(tmp_path)
    figure_worker.draw_later(trainer, "bad.png", gallery_figure, {"wrong": 1})
    figure_worker.draw_later(trainer, "cm.png", confusion_matrix_figure, matrix_inputs("ok"))
    figure_worker.finish(trainer)
    assert "could not draw bad.png: TypeError" in capsys.readouterr().err
    assert (tmp_path / "cm.png").is_file() and not (tmp_path / "bad.png").exists()


def test_figures_survive_a_dead_worker(tmp_path):
    trainer = make_trainer(tmp_path)
    figure_worker.draw_later(trainer, "one.png", confusion_matrix_figure, matrix_inputs("1"))
    figure_worker.finish(trainer)
    figure_worker._worker.proc.kill()
    figure_worker._worker.proc.wait()
    figure_worker.draw_later(trainer, "two.png", confusion_matrix_figure, matrix_inputs("2"))
    figure_worker.finish(trainer)  # the worker could not draw it: drawn here instead
    assert (tmp_path / "two.png").stat().st_size > 1000
    figure_worker.draw_later(trainer, "three.png", confusion_matrix_figure, matrix_inputs("3"))
    figure_worker.finish(trainer)  # and a fresh worker takes the next ones
    assert figure_worker._worker.alive and (tmp_path / "three.png").is_file()


def test_inline_mode_draws_before_returning(tmp_path, monkeypatch):
    monkeypatch.setenv("MLCYCLE_FIGURES", "inline")
    trainer = make_trainer(tmp_path)
    start = time.monotonic()
    path = figure_worker.draw_later(
        trainer, "cm.png", confusion_matrix_figure, matrix_inputs("inline"), tag="val/cm"
    )
    assert path.is_file() and time.monotonic() - start < 30
    trainer.logger.experiment.flush()
    assert image_steps(tmp_path, "val/cm") == [0]


@pytest.mark.parametrize("count", [5])
def test_a_newer_figure_for_the_same_file_replaces_one_not_yet_drawn(tmp_path, count):
    trainer = make_trainer(tmp_path)
    for k in range(count):
        trainer.fit_loop.epoch_progress.current.completed = k  # current_epoch
        figure_worker.draw_later(
            trainer, "cm.png", confusion_matrix_figure, matrix_inputs(f"epoch {k}"), tag="val/cm"
        )
    figure_worker.finish(trainer)
    trainer.logger.experiment.flush()
    steps = image_steps(tmp_path, "val/cm")
    assert steps[-1] == count - 1 and len(steps) < count  # the last one, not every one


def test_a_worker_without_cpu_time_does_not_hold_up_the_end_of_the_fit(tmp_path, monkeypatch):
    import signal

    trainer = make_trainer(tmp_path)
    figure_worker.draw_later(trainer, "one.png", confusion_matrix_figure, matrix_inputs("1"))
    figure_worker.finish(trainer)
    worker = figure_worker._worker
    monkeypatch.setattr(figure_worker, "RUNNING_WAIT_S", 0.5)
    os.kill(worker.proc.pid, signal.SIGSTOP)  # a niced process on a busy machine, at worst
    try:
        for name in ("two.png", "three.png"):
            figure_worker.draw_later(trainer, name, confusion_matrix_figure, matrix_inputs(name))
        start = time.monotonic()
        figure_worker.finish(trainer)
        assert time.monotonic() - start < 20
        assert (tmp_path / "two.png").is_file() and (tmp_path / "three.png").is_file()
    finally:
        os.kill(worker.proc.pid, signal.SIGCONT)
