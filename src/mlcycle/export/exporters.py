"""What export needs to know of each task, behind one interface, found by the task's name.

``scripts/export.py`` is the same for every task: load the run, trace the module the task
exports, write TorchScript and ONNX, verify them against eager, write ``model.json``. A
``TaskExport`` supplies the parts that differ: the module, the graph's outputs, the check
against eager and the description of the outputs. A new task adds a file with a subclass
decorated by ``register_export`` (a plugin: a module in the ``mlcycle.exporters``
entry-point group).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from lightning.pytorch import LightningModule
from torch import nn
from torch.utils.data import DataLoader

from mlcycle.core.registry import Registry
from mlcycle.export.onnx_export import OnnxIO
from mlcycle.export.verify import Artifact

EXPORTS: Registry[type[TaskExport]] = Registry(
    "exporter", "task", "mlcycle.exporters", ["mlcycle.export"]
)


@dataclass
class Verification:
    """What a task's check against eager gets."""

    module: nn.Module  # the eager module that was exported
    artifacts: list[Artifact]
    dataset: Any  # the validation split, without augmentation
    data_info: dict[str, Any]  # the run's data.json
    args: Any  # export.py's options: batch size and tolerances


def register_export(task: str) -> Callable[[type[TaskExport]], type[TaskExport]]:
    def decorator(cls: type[TaskExport]) -> type[TaskExport]:
        cls.task = task
        EXPORTS.add(task, cls)
        return cls

    return decorator


def export_for(task: str) -> TaskExport:
    """The exporter of ``task`` (``classification``, ``segmentation``, ``detection``, ...)."""
    return EXPORTS.get(task)()


class TaskExport:
    """The default behaviour is that of a model mapping an NCHW batch to one tensor."""

    task = ""
    io = OnnxIO()
    quantizable = True  # static INT8 of the ONNX graph makes sense for this task
    calibratable = False  # class logits: export --calibrate and decision thresholds apply
    headline = "val/f1"  # the metric in metrics.json the verification is compared with

    def module(self, task: LightningModule) -> nn.Module:
        """The plain ``nn.Module`` that is traced: the task's network, without metrics."""
        return getattr(task, "model", task)

    def check_options(self, args: Any) -> None:
        """Refuse options that do not apply to this task (a ``UserError``)."""

    def batches(self, dataset: Any, batch_size: int) -> Iterator[tuple[torch.Tensor, Any]]:
        """``(float32 NCHW batch, targets)`` in dataset order, without augmentation."""
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
        for x, y, *_ in loader:
            yield x.float(), y

    def verify(self, job: Verification) -> dict[str, Any]:
        """Run every artifact beside the eager module; the report ``verification.json`` holds."""
        raise NotImplementedError

    def table(self, report: dict[str, Any], checkpoint: str) -> str:
        raise NotImplementedError

    def failures(self, report: dict[str, Any]) -> list[str]:
        raise NotImplementedError

    def output(self, data_info: dict[str, Any], module: nn.Module) -> dict[str, Any]:
        """``model.json``'s ``output``: what the graph returns and how to read it."""
        raise NotImplementedError

    def summary(self, report: dict[str, Any]) -> list[str]:
        """Extra lines printed under the table (e.g. what INT8 cost)."""
        return []

    def export_run(self, run: Any, args: Any) -> dict[str, Any] | None:
        """A task whose artifact is not one traced module over images (tables: the fitted
        preprocessing and the model in one ONNX graph) writes its whole export here and returns
        export.py's result; ``None`` (the default): export.py's own flow."""
        return None
