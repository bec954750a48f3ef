"""A base for callbacks that hand figures to the figure worker."""

from __future__ import annotations

from lightning.pytorch import Callback, LightningModule, Trainer

from mlcycle.reports import figure_worker


class FinishesFigures(Callback):
    """The figure worker starts with the fit (its imports overlap the set-up and the first
    epoch, not later ones). At the end of the fit, also after an error, the trainer's last
    figures are drawn (``mlcycle.reports.figure_worker.finish``; calling it twice is harmless)."""

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.is_global_zero:
            figure_worker.start()

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        figure_worker.finish(trainer)

    def on_exception(
        self, trainer: Trainer, pl_module: LightningModule, exception: BaseException
    ) -> None:
        figure_worker.finish(trainer)
