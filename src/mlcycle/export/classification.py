"""Classification export: ``logits`` [batch, classes]; top-1 must agree with eager everywhere."""

from __future__ import annotations

import warnings
from typing import Any

from torch import nn

from mlcycle.export import classification_verify as checks
from mlcycle.export.exporters import TaskExport, Verification, register_export
from mlcycle.export.verify import int8_summary
from mlcycle.tasks.tta import FlipTTA, with_tta

TTA_MEANING = (
    "log of the mean softmax over the test-time flips, in class_names order; softmax over "
    "axis 1 gives the mean probabilities"
)


@register_export("classification")
class ClassificationExport(TaskExport):
    headline = "val/f1"
    calibratable = True

    def module(self, task: Any) -> nn.Module:
        """The network; with the task's ``tta``, the flips and their averaging in the graph."""
        return with_tta(task.model, task)

    def verify(self, job: Verification) -> dict[str, Any]:
        args = job.args
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torchmetrics on classes absent from val
            return checks.verify(
                job.module,
                job.artifacts,
                self.batches(job.dataset, args.batch_size),
                len(job.data_info["class_names"]),
                max_logit_diff=args.max_logit_diff,
                max_f1_drop=args.max_f1_drop,
            )

    def table(self, report: dict[str, Any], checkpoint: str) -> str:
        return checks.format_table(report, checkpoint)

    def failures(self, report: dict[str, Any]) -> list[str]:
        return checks.failures(report)

    def output(self, data_info: dict[str, Any], module: nn.Module) -> dict[str, Any]:
        return {
            "name": "logits",
            "kind": "classes",  # the output form predict.py, the server and the monitor read
            "shape": ["batch", len(data_info["class_names"])],
            "meaning": TTA_MEANING
            if isinstance(module, FlipTTA)
            else "logits: unnormalized class scores in class_names order; "
            "softmax over axis 1 gives probabilities",
            "softmax_applied": False,
        }

    def summary(self, report: dict[str, Any]) -> list[str]:
        return int8_summary(report, "macro_f1", "val macro F1")
