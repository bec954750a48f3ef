"""One summary line per epoch that flags over-fitting and under-fitting as they appear."""

from __future__ import annotations

from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_only


def diagnose(rows: list[dict[str, float]], num_classes: int) -> str | None:
    """A flag for the last epoch of ``rows`` (train/val loss and error per epoch), or ``None``.

    Over-fitting: val loss rose two epochs running (by 2% or more) while train loss fell, or the val-train error
    gap widened two epochs running and now exceeds 5 points. Under-fitting: train and val error
    both high (above 30% of chance error, and 10%) while train loss moved under 2% in two epochs.
    Rows without errors (detection) get the loss rule only.
    """
    if len(rows) < 3:
        return None
    a, b, c = rows[-3:]
    tl, vl = [r["train/loss"] for r in (a, b, c)], [r["val/loss"] for r in (a, b, c)]
    if vl[0] < vl[1] < vl[2] and vl[2] > 1.02 * vl[0] and tl[0] > tl[1] > tl[2]:
        return "over-fitting? val loss rose 2 epochs while train loss fell"
    if not all("train/error" in r and "val/error" in r for r in (a, b, c)):
        return None
    gap = [r["val/error"] - r["train/error"] for r in (a, b, c)]
    if gap[0] < gap[1] < gap[2] and gap[2] > 0.05:
        return f"over-fitting? train-val error gap widened 2 epochs to {gap[2]:.1%}"
    high = max(0.1, 0.3 * (1 - 1 / max(num_classes, 2)))
    flat = abs(tl[0] - tl[2]) / max(abs(tl[0]), 1e-8) < 0.02
    if c["train/error"] > high and c["val/error"] > high and flat:
        return f"under-fitting? train and val error above {high:.0%} and train loss flat; try a larger model or lr"
    return None


class FitDiagnosis(Callback):
    """Prints ``epoch 3/20  train loss .. err ..  val loss .. err ..  f1 ..  [flag]``.

    The errors appear when the task logs ``train/acc`` and ``val/error``; after them, the
    task's ``epoch_metrics`` (default: its monitored metric), e.g. ``map .. map_50 ..``.
    """

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []
        self.flags: list[dict[str, Any]] = []

    @rank_zero_only
    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        m = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        if trainer.sanity_checking or not {"train/loss", "val/loss"} <= m.keys():
            return
        row = {"train/loss": m["train/loss"], "val/loss": m["val/loss"]}
        if {"train/acc", "val/error"} <= m.keys():
            row.update({"train/error": 1 - m["train/acc"], "val/error": m["val/error"]})
        self.rows.append(row)
        flag = diagnose(self.rows, getattr(pl_module.hparams, "num_classes", 2))
        epochs = (
            f"{trainer.current_epoch + 1}/{trainer.max_epochs}"
            if trainer.max_epochs
            else str(trainer.current_epoch)
        )
        train = f"train loss {row['train/loss']:.4f}"
        val = f"val loss {row['val/loss']:.4f}"
        if "val/error" in row:
            train += f" err {row['train/error']:.2%}"
            val += f" err {row['val/error']:.2%}"
        line = f"epoch {epochs}  {train}  {val}"
        monitor = getattr(pl_module, "monitor", ("val/f1", "max"))[0]
        for key in getattr(pl_module, "epoch_metrics", (monitor,)):
            if key in m:
                line += f" {key.removeprefix('val/')} {m[key]:.4f}"
        if flag:
            line += f"  [{flag}]"
            self.flags.append({"epoch": trainer.current_epoch + 1, "flag": flag})
        bar = trainer.progress_bar_callback
        (bar.print if bar is not None and hasattr(bar, "print") else print)(line)

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "flags": self.flags}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.rows, self.flags = list(state_dict.get("rows", [])), list(state_dict.get("flags", []))
