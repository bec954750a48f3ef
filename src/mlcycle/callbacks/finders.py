"""The learning-rate and batch-size finders (``--find_lr``, ``--find_batch_size``): Lightning's
tuner on the configured model and data, its result written to the run directory as JSON (and
the learning-rate curve as a PNG)."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.accelerators import CUDAAccelerator
from lightning.pytorch.tuner import Tuner
from lightning.pytorch.utilities.parsing import lightning_setattr
from matplotlib.figure import Figure

from mlcycle.callbacks.freeze import frozen_as_at_start
from mlcycle.core.errors import UserError
from mlcycle.core.record import write_json
from mlcycle.reports.figures import plt, save

LR_RANGE = (1e-8, 1.0)  # Lightning's default search range
SKIP_BEGIN = 10  # the first smoothed losses are biased (as Lightning's own suggestion skips them)
TRIALS = {"cuda": 25, "other": 6}  # batch sizes tried: 2, 4, 8, ... (no out-of-memory on a CPU)


def _finite(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def _run_lr_finder(
    trainer: Trainer, model: LightningModule, datamodule: LightningDataModule, steps: int
) -> Any:
    """``Tuner.lr_find`` over ``LR_RANGE`` for ``steps`` steps (the model left unchanged)."""
    # The finder stops after `steps` optimizer steps, but also at max_epochs; a small data set
    # needs more epochs than the run itself.
    max_epochs = trainer.fit_loop.max_epochs
    trainer.fit_loop.max_epochs = max(max_epochs or 1, steps)
    try:
        finder = Tuner(trainer).lr_find(
            model,
            datamodule=datamodule,
            min_lr=LR_RANGE[0],
            max_lr=LR_RANGE[1],
            num_training=steps,
            update_attr=False,
        )
    finally:
        trainer.fit_loop.max_epochs = max_epochs
    if finder is None:
        raise UserError("the learning-rate finder did not run (trainer.fast_dev_run is set)")
    return finder


def find_lr(
    trainer: Trainer,
    model: LightningModule,
    datamodule: LightningDataModule,
    run_dir: Path,
    steps: int = 100,
    apply: bool = False,
) -> dict[str, Any]:
    """Run ``Tuner.lr_find`` for ``steps`` steps from ``LR_RANGE[0]`` to ``LR_RANGE[1]``; write
    ``lr_finder.json`` and ``lr_finder.png``. With ``apply`` the model's ``lr`` becomes the
    suggestion. The model's weights are restored afterwards either way. A model that starts
    frozen (``freeze_epochs``) is swept frozen, as its first epoch trains: the head alone."""
    if "lr" not in model.hparams:
        raise UserError(
            f"--find_lr needs a model with an 'lr' argument; {type(model).__name__} has none"
        )
    if steps < 20:
        raise UserError(f"--find_lr_steps={steps} is too few; the suggestion needs at least 20")
    configured = float(model.hparams.lr)
    with frozen_as_at_start(model) as freeze, warnings.catch_warnings():
        # the frozen layers are in eval mode on purpose (their BatchNorm statistics stay)
        warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode")
        finder = _run_lr_finder(trainer, model, datamodule, steps)
        trained = (
            "all layers"
            if freeze is None
            else f"{freeze.training} of {len(freeze.groups)} layer groups (frozen as in epoch 0)"
        )
    lrs = [float(v) for v in finder.results["lr"]]
    losses = [float(v) for v in finder.results["loss"]]
    suggestion = steepest_descent(lrs, losses)
    lightning_suggestion = finder.suggestion() if len(lrs) > SKIP_BEGIN + 1 else None
    result = {
        "suggestion": suggestion,
        "configured_lr": configured,
        "applied": bool(apply and suggestion is not None),
        "range": list(LR_RANGE),
        "steps": len(lrs),
        "steps_requested": steps,
        "stopped_early": len(lrs) < steps,
        "trained": trained,
        "method": "Lightning lr_find (exponential sweep, smoothed loss); suggestion: the steepest "
        f"descent of the loss against log10(lr), first {SKIP_BEGIN} points skipped, up to the lowest loss",
        "lightning_suggestion": lightning_suggestion,
        "curve": [{"lr": lr, "loss": _finite(loss)} for lr, loss in zip(lrs, losses, strict=True)],
    }
    write_json(run_dir / "lr_finder.json", result)
    save(lr_figure(lrs, losses, suggestion, configured), run_dir / "lr_finder.png")
    if suggestion is None:
        raise UserError(
            f"the learning-rate finder got {len(lrs)} loss values, too few for a suggestion; "
            f"see {run_dir / 'lr_finder.png'} and raise --find_lr_steps"
        )
    if apply:
        lightning_setattr(model, "lr", suggestion)
    return result


def steepest_descent(lrs: list[float], losses: list[float]) -> float | None:
    """The learning rate where the loss falls fastest per decade, before its lowest point.

    Lightning's ``suggestion()`` takes the gradient against the learning rate itself, so the
    tiny spacing of the first, smallest rates makes noise there look steepest (on the quick
    start it proposes 6e-6 where 5e-3 trains well); per decade, as fastai does, it does not.
    """
    points = [
        (lr, loss)
        for lr, loss in zip(lrs[SKIP_BEGIN:-1], losses[SKIP_BEGIN:-1], strict=True)
        if lr > 0 and math.isfinite(loss)
    ]
    if len(points) >= 3:
        lowest = min(range(len(points)), key=lambda i: points[i][1])
        points = points[: lowest + 1]
    if len(points) < 3:
        return None
    rates, loss = np.array(points).T
    slopes = np.gradient(loss, np.log10(rates))
    return float(rates[int(np.argmin(slopes))])


def lr_figure(
    lrs: list[float], losses: list[float], suggestion: float | None, configured: float
) -> Figure:
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot(lrs, losses, color="tab:blue", label="smoothed training loss")
    ax.set_xscale("log")
    ax.axvline(configured, color="gray", linestyle="--", label=f"configured lr {configured:.3g}")
    if suggestion is not None:
        at = min(range(len(lrs)), key=lambda i: abs(lrs[i] - suggestion))
        ax.plot([suggestion], [losses[at]], "o", color="tab:red", markersize=8)
        ax.axvline(suggestion, color="tab:red", linestyle=":", label=f"suggestion {suggestion:.3g}")
    finite = [v for v in losses[SKIP_BEGIN:] if math.isfinite(v)]
    if finite:  # the loss shoots up at the end of the sweep: keep the part before it in view
        low = min(finite)
        high = max(finite[: finite.index(low) + 1])
        pad = 0.1 * (high - low) + 1e-3 * abs(high)
        ax.set_ylim(low - pad, high + pad)
    ax.set(xlabel="learning rate", ylabel="loss", title="learning-rate finder")
    ax.legend(fontsize=8)
    return fig


def find_batch_size(
    trainer: Trainer,
    model: LightningModule,
    datamodule: LightningDataModule,
    run_dir: Path,
    max_trials: int | None = None,
    apply: bool = False,
) -> dict[str, Any]:
    """Run ``Tuner.scale_batch_size`` (mode ``power``: 2, 4, 8, ... until out of memory, the
    training split's size or ``max_trials``); write ``batch_size_finder.json``. With ``apply``
    the data module keeps the size found, else its configured one. On a device without an
    out-of-memory signal (the CPU) the search is capped at ``TRIALS["other"]`` trials."""
    if "batch_size" not in datamodule.hparams:
        raise UserError(
            f"--find_batch_size needs a data module with a 'batch_size' argument; "
            f"{type(datamodule).__name__} has none"
        )
    configured = int(datamodule.hparams.batch_size)
    cuda = isinstance(trainer.accelerator, CUDAAccelerator)
    trials = max_trials or TRIALS["cuda" if cuda else "other"]
    init = 2
    found = Tuner(trainer).scale_batch_size(
        model,
        datamodule=datamodule,
        mode="power",
        init_val=init,
        max_trials=trials,
        steps_per_trial=3,
    )
    if found is None:
        raise UserError("the batch-size finder did not run (trainer.fast_dev_run is set)")
    result = {
        "batch_size": int(found),
        "configured_batch_size": configured,
        "applied": apply,
        "limited_by": _limited_by(found, datamodule, init, trials),
        "mode": "power",
        "init_val": init,
        "max_trials": trials,
        "steps_per_trial": 3,
        "device": "cuda"
        if cuda
        else type(trainer.accelerator).__name__.replace("Accelerator", "").lower(),
        "note": None
        if cuda
        else "no out-of-memory error to find on this device; the size is capped by the trials",
    }
    write_json(run_dir / "batch_size_finder.json", result)
    # The scaler leaves its result in every place it found the attribute; undo it unless applied.
    _set_batch_size(int(found) if apply else configured, datamodule, model)
    return result


def _limited_by(found: int, datamodule: LightningDataModule, init: int, trials: int) -> str:
    """What stopped the batch-size search at ``found``."""
    train_size = len(datamodule.dataset("train")) if hasattr(datamodule, "dataset") else None
    if train_size is not None and found >= train_size:
        return f"the training split's size ({train_size} images)"
    if found >= init * 2 ** (trials - 1):
        return f"the number of trials ({trials}; --find_batch_size_trials)"
    return "out of memory at the next size"


def _set_batch_size(size: int, datamodule: LightningDataModule, model: LightningModule) -> None:
    for holder in (datamodule.hparams, model.hparams):
        if "batch_size" in holder:
            holder["batch_size"] = size
