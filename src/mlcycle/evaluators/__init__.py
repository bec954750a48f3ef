"""Per-task evaluation for ``evaluate.py``, registered by the task's ``task_name``.

An evaluator takes ``(model, data, split, run_dir)``, writes its figures into ``run_dir`` and
returns a JSON-ready dict with at least ``images`` and ``metrics``. It runs the model through
:func:`predict_split` (``Trainer.predict``: device, precision and distributed sampling come
with it) and consumes the task's ``predict_step`` outputs batch by batch; its metrics are the
task's own definitions (``classification_metrics``, ``segmentation_metrics``,
``detection_metric``). A new task adds one file here (or a plugin module in the
``mlcycle.evaluators`` entry-point group) with ``@EVALUATORS.register("<task_name>")``.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Callable
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import move_data_to_device

from mlcycle.core.errors import UserError
from mlcycle.core.registry import Registry
from mlcycle.evaluators.outputs import keep

Evaluator = Callable[..., dict[str, Any]]
EVALUATORS: Registry[Evaluator] = Registry(
    "evaluator", "task", "mlcycle.evaluators", ["mlcycle.evaluators"]
)
register_evaluator = EVALUATORS.register


def evaluator_for(model: Any) -> Evaluator:
    """The evaluator registered under ``model.task_name``."""
    name = model.task_name
    if name not in EVALUATORS:
        raise UserError(
            f"evaluate.py does not know how to score a {name} task ({type(model).__name__}); "
            f"evaluators exist for {', '.join(EVALUATORS.names())}"
        )
    return EVALUATORS.get(name)


class _Consume(Callback):
    """Hands each batch's ``predict_step`` output, moved to the CPU, to ``consume``."""

    def __init__(self, consume: Callable[[dict[str, Any]], None]) -> None:
        self.consume = consume

    def on_predict_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, *args: Any
    ) -> None:
        outputs = move_data_to_device(outputs, torch.device("cpu"))
        keep(outputs)  # evaluation by slice reads every item's prediction (outputs.py)
        self.consume(outputs)


def predict_split(
    model: LightningModule,
    data: Any,
    split: str,
    consume: Callable[[dict[str, Any]], None],
    progress: bool | None = None,
) -> None:
    """Run ``model.predict_step`` over ``data.split_dataloader(split)`` with ``Trainer.predict``
    on one device; ``consume`` gets every batch's outputs on the CPU, so a split's predictions
    are never held in memory at once. ``progress``: a progress bar (default: on a terminal)."""
    quiet = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # no "GPU available: ..." lines around the report
    try:
        trainer = Trainer(
            accelerator="auto",
            devices=1,
            logger=False,
            enable_progress_bar=sys.stderr.isatty() if progress is None else progress,
            enable_model_summary=False,
            enable_checkpointing=False,
            callbacks=[_Consume(consume)],
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", ".*does not have many workers.*")
            warnings.filterwarnings("ignore", ".*LeafSpec.*")  # Lightning's own deprecation
            loader = data.split_dataloader(split)
            trainer.predict(model, dataloaders=loader, return_predictions=False)
    finally:
        quiet.setLevel(level)
