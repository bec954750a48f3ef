"""One summary line per epoch that flags over- and under-fitting, and the run's diagnosis at the end."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_only

from mlcycle.callbacks.baselines import Scores, baseline_finding, baselines_or_empty
from mlcycle.callbacks.chance import Chance
from mlcycle.callbacks.diagnosis import Finding, conclude, diagnose

if TYPE_CHECKING:  # tasks import the callbacks
    from mlcycle.tasks.base import Task

__all__ = ["FitDiagnosis", "diagnose"]

GRADS = ("train/grad_norm_mean", "train/grad_norm_max")


class FitDiagnosis(Callback):
    """Prints ``epoch 3/20  train loss .. err ..  val loss .. err ..  f1 ..  [flag]``.

    It reads the task's contract (``mlcycle.tasks.base.Task``): ``monitor``, ``epoch_metrics``,
    ``chance_level`` and ``hparams.num_classes``. The errors appear when the task logs
    ``train/acc`` and ``val/error``; after them, the task's ``epoch_metrics`` (default: its
    monitored metric), e.g. ``map .. map_50 ..``.
    ``findings`` holds the over-/under-fitting flags of the epochs and, once the fit ends,
    the run's diagnosis (:func:`mlcycle.callbacks.diagnosis.conclude`) with the line about
    the task's dummy baselines on val (``baselines``: ``below_baseline`` when not beaten).
    """

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []
        self.flags: list[dict[str, Any]] = []
        self.final: list[dict[str, Any]] = []
        self.monitor: tuple[str, str] = ("val/loss", "min")
        self.chance: Chance | None = None
        self.baselines: Scores = {}  # the task's dummy baselines on val, once the fit ends

    @property
    def findings(self) -> list[dict[str, Any]]:
        return self.flags + self.final

    @rank_zero_only
    def on_fit_start(self, trainer: Trainer, pl_module: Task) -> None:
        self.monitor = tuple(pl_module.monitor)
        self.chance = pl_module.chance_level(getattr(trainer, "datamodule", None))
        self.final = []

    @rank_zero_only
    def on_train_epoch_end(self, trainer: Trainer, pl_module: Task) -> None:
        m = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        if trainer.sanity_checking or not {"train/loss", "val/loss"} <= m.keys():
            return
        epoch = trainer.current_epoch + 1
        row = {"epoch": epoch, "train/loss": m["train/loss"], "val/loss": m["val/loss"]}
        if {"train/acc", "val/error"} <= m.keys():
            row.update({"train/error": 1 - m["train/acc"], "val/error": m["val/error"]})
        monitor = self.monitor[0]
        row.update({k: m[k] for k in (monitor, *GRADS) if k in m})
        self.rows = [r for r in self.rows if r.get("epoch") != epoch] + [row]
        flag = diagnose(self.rows, pl_module.hparams.num_classes)
        epochs = f"{epoch}/{trainer.max_epochs}" if trainer.max_epochs else str(epoch)
        train = f"train loss {row['train/loss']:.4f}"
        val = f"val loss {row['val/loss']:.4f}"
        if "val/error" in row:
            train += f" err {row['train/error']:.2%}"
            val += f" err {row['val/error']:.2%}"
        line = f"epoch {epochs}  {train}  {val}"
        for key in pl_module.epoch_metrics or (monitor,):
            if key in m:
                line += f" {key.removeprefix('val/')} {m[key]:.4f}"
        if flag:
            line += f"  [{flag.kind}? {flag.message}]"
            self.flags.append(flag.as_dict())
        _print(trainer, line)

    @rank_zero_only
    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.baselines = baselines_or_empty(pl_module, getattr(trainer, "datamodule", None))
        self.conclude()

    def conclude(self) -> list[Finding]:
        """The run's diagnosis from the epochs so far; kept in ``final``."""
        found = conclude(self.rows, *self.monitor, self.chance)
        versus = baseline_finding(self.rows, *self.monitor, self.baselines)
        found += [versus] if versus else []
        self.final = [f.as_dict() for f in found]
        return found

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "flags": self.flags}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        rows = state_dict.get("rows", [])
        self.rows = [r if "epoch" in r else {"epoch": i + 1, **r} for i, r in enumerate(rows)]
        self.flags = [f for f in state_dict.get("flags", []) if "kind" in f]


def _print(trainer: Trainer, line: str) -> None:
    bar = trainer.progress_bar_callback
    (bar.print if bar is not None and hasattr(bar, "print") else print)(line)
