"""A base for callbacks that hand figures to the figure worker."""

from __future__ import annotations

from lightning.pytorch import Callback, LightningModule, Trainer

from mlcycle.reports import figure_worker


class FinishesFigures(Callback):
    """At the end of the fit, also after an error, the trainer's last figures are drawn
    (``mlcycle.reports.figure_worker.finish``; calling it twice is harmless)."""

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        figure_worker.finish(trainer)

    def on_exception(
        self, trainer: Trainer, pl_module: LightningModule, exception: BaseException
    ) -> None:
        figure_worker.finish(trainer)
