"""The progress bar: redrawn by the clock, replaced by the user's own, absent when switched off."""

from __future__ import annotations

from conftest import train_args
from lightning.pytorch.callbacks import ProgressBar, TQDMProgressBar

from mlcycle.callbacks.progress import TimedProgressBar
from mlcycle.training.fit import fit


def bars(trainer) -> list[ProgressBar]:
    return [c for c in trainer.callbacks if isinstance(c, ProgressBar)]


def test_the_bar_redraws_by_the_clock_and_at_the_end():
    bar = TimedProgressBar(interval=3600)
    drawn = [n for n in range(1, 101) if bar.due(n, 100)]
    assert drawn == [1, 100]  # the first batch, then nothing until the last within the hour
    bar = TimedProgressBar(interval=0)
    assert all(bar.due(n, 100) for n in range(1, 101))


def test_a_run_gets_the_timed_bar_unless_it_brings_its_own_or_has_none(image_folder, tmp_path):
    on = "--trainer.enable_progress_bar=true"
    trainer = fit(train_args(image_folder, tmp_path / "a", on)).trainer
    assert [type(b) for b in bars(trainer)] == [TimedProgressBar]
    own = "--trainer.callbacks+=lightning.pytorch.callbacks.TQDMProgressBar"
    trainer = fit(train_args(image_folder, tmp_path / "b", on, own)).trainer
    assert [type(b) for b in bars(trainer)] == [TQDMProgressBar]
    trainer = fit(train_args(image_folder, tmp_path / "c")).trainer  # enable_progress_bar=false
    assert bars(trainer) == []


def test_lightning_draws_only_the_batches_that_are_due(image_folder, tmp_path, monkeypatch):
    drawn = []  # the batches Lightning's own hook received: (batch, of total)
    draw = TQDMProgressBar.on_train_batch_end

    def spy(self, trainer, pl_module, outputs, batch, batch_idx):
        drawn.append((batch_idx + 1, self.train_progress_bar.total))
        draw(self, trainer, pl_module, outputs, batch, batch_idx)

    monkeypatch.setattr(TQDMProgressBar, "on_train_batch_end", spy)
    own = "--trainer.callbacks+=mlcycle.callbacks.progress.TimedProgressBar"
    args = ["--trainer.enable_progress_bar=true", own, "--trainer.callbacks.interval=3600"]
    trainer = fit(train_args(image_folder, tmp_path, *args)).trainer
    total = trainer.num_training_batches
    assert total > 2 and drawn == [(1, total), (total, total)]
