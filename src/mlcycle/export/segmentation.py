"""Segmentation export: ``logits`` [batch, classes, H, W] with a dynamic batch axis.

FP32 artifacts must match eager logits within ``--max-logit-diff``, and the per-pixel class may
differ only where eager's two best logits are that close (a tie); INT8 may lose at most
``--max-f1-drop`` of validation mean IoU.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from mlcycle.export.exporters import TaskExport, Verification, register_export
from mlcycle.export.onnx_export import OnnxIO
from mlcycle.export.verify import (
    Artifact,
    check,
    drop_phrase,
    failed_checks,
    float_batch,
    fp32_onnx_size,
    int8_summary,
    load_runner,
    logit_phrase,
    logits_table,
    precision_checks,
    report,
)
from mlcycle.tasks.segmentation import logits_at_input, segmentation_metrics
from mlcycle.tasks.tta import with_tta

MAX_MIOU_DROP = 0.01


class SegmentationLogits(nn.Module):
    """The task's network with its output at the input's resolution, as in training."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return logits_at_input(self.net, x)


class _Scores:
    """Mean IoU and pixel accuracy of one model's argmax over the whole split, with the metrics
    training logs (``segmentation_metrics``)."""

    def __init__(self, num_classes: int, ignore_index: int) -> None:
        self.metrics = segmentation_metrics(num_classes, ignore_index)

    def update(self, pred: np.ndarray, target: torch.Tensor) -> None:
        self.metrics.update(torch.from_numpy(pred), target)

    def compute(self) -> dict[str, float]:
        values = self.metrics.compute()
        return {"miou": float(values["iou"]), "pixel_acc": float(values["acc"])}


def _top2_gap(logits: np.ndarray) -> np.ndarray:
    """Per pixel, the best logit minus the second best."""
    top = np.partition(logits, -2, axis=1)
    return top[:, -1] - top[:, -2]


class _Stats:
    """How one artifact's logits and pixels differ from eager's, accumulated over batches."""

    def __init__(self) -> None:
        self.max = self.sum = 0.0
        self.disagree = self.beyond_ties = 0

    def update(self, out: np.ndarray, ref: np.ndarray, gap: np.ndarray, tie_gap: float) -> None:
        diff = np.abs(out.astype(np.float64) - ref)
        differs = out.argmax(1) != ref.argmax(1)
        self.max = max(self.max, float(diff.max()))
        self.sum += float(diff.sum())
        self.disagree += int(differs.sum())
        self.beyond_ties += int((differs & (gap > tie_gap)).sum())


def _stream(
    eager: nn.Module,
    runners: dict[str, Any],
    batches: Any,
    scores: dict[str, _Scores],
    stats: dict[str, _Stats],
    tie_gap: float,
) -> tuple[int, int, int]:
    """Every batch through eager and each runner, into ``scores`` and ``stats``; the number
    of images, pixels and logit values seen."""
    images = pixels = values = 0
    for x, y in batches:
        with torch.no_grad():
            ref = eager(x).float().numpy()
        ref_pred, gap = ref.argmax(1), _top2_gap(ref)
        scores["eager"].update(ref_pred, y)
        batch = float_batch(x)
        for name, run in runners.items():
            out = np.asarray(run(batch), dtype=np.float32)
            stats[name].update(out, ref, gap, tie_gap)
            scores[name].update(out.argmax(1), y)
        images += len(x)
        pixels += ref_pred.size
        values += ref.size
    if not images:
        raise ValueError("no validation images to verify the artifacts on")
    return images, pixels, values


def _segmentation_row(
    artifact: Artifact,
    s: _Stats,
    got: dict[str, float],
    eager_scores: dict[str, float],
    counts: tuple[int, int, int],
) -> dict[str, Any]:
    images, pixels, values = counts
    return {
        **artifact.row(images),
        "pixels": pixels,
        "max_abs_logit_diff": s.max,
        "mean_abs_logit_diff": s.sum / values,
        "pixel_disagreements": s.disagree,
        "pixel_agreement": 1 - s.disagree / pixels,
        **got,
        "miou_change": got["miou"] - eager_scores["miou"],
        "pixel_acc_change": got["pixel_acc"] - eager_scores["pixel_acc"],
    }


def verify_segmentation(
    eager: nn.Module,
    artifacts: list[Artifact],
    batches: Any,
    num_classes: int,
    ignore_index: int,
    max_logit_diff: float,
    max_miou_drop: float = MAX_MIOU_DROP,
) -> dict[str, Any]:
    """Stream the split through eager and every artifact; compare logits, pixels and mIoU."""
    runners = {a.name: load_runner(a) for a in artifacts}
    scores = {name: _Scores(num_classes, ignore_index) for name in ["eager", *runners]}
    stats = {name: _Stats() for name in runners}
    counts = _stream(eager, runners, batches, scores, stats, 2 * max_logit_diff)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # classes absent from val
        results = {name: s.compute() for name, s in scores.items()}
    eager_scores = results["eager"]
    fp32_size = fp32_onnx_size(artifacts)
    rows = []
    for artifact in artifacts:
        s, got = stats[artifact.name], results[artifact.name]
        row = _segmentation_row(artifact, s, got, eager_scores, counts)
        fp32 = [
            check("max_abs_logit_diff", s.max, max_logit_diff),
            check("pixel_disagreements_beyond_ties", s.beyond_ties, 0),
        ]
        int8 = [check("miou_drop", eager_scores["miou"] - got["miou"], max_miou_drop)]
        rows.append(precision_checks(row, artifact, fp32, int8, fp32_size))
    tolerances = {
        "max_abs_logit_diff": max_logit_diff,
        "tie_gap": 2 * max_logit_diff,
        "max_miou_drop": max_miou_drop,
    }
    return report(counts[0], tolerances, eager_scores, rows, pixels=counts[1])


@register_export("segmentation")
class SegmentationExport(TaskExport):
    io = OnnxIO()  # input [batch, C, H, W] -> logits [batch, classes, H, W]
    headline = "val/iou"

    def module(self, task: Any) -> nn.Module:
        """Logits at the input's size; with the task's ``tta``, averaged over the flips."""
        return with_tta(SegmentationLogits(task.model), task, dense=True)

    def verify(self, job: Verification) -> dict[str, Any]:
        args = job.args
        return verify_segmentation(
            job.module,
            job.artifacts,
            self.batches(job.dataset, args.batch_size),
            len(job.data_info["class_names"]),
            int(job.data_info.get("ignore_index", 255)),
            max_logit_diff=args.max_logit_diff,
            max_miou_drop=args.max_f1_drop,
        )

    def table(self, report: dict[str, Any], checkpoint: str) -> str:
        return logits_table(
            report,
            checkpoint,
            ("pixels agree", "pixel acc", "mIoU", "dmIoU"),
            lambda r: f"{r['pixel_agreement'] * 100:.4f}%",
            ("pixel_acc", "miou"),
        )

    def failures(self, report: dict[str, Any]) -> list[str]:
        def phrase(row: dict[str, Any], c: dict[str, Any]) -> str:
            if c["name"] == "max_abs_logit_diff":
                return logit_phrase(row, c)
            if c["name"] == "pixel_disagreements_beyond_ties":
                return (
                    f"{row['file']}: the class of {c['value']} of {row['pixels']} pixels differs "
                    "from eager where eager's choice was not a tie"
                )
            return drop_phrase(row, c, "val mean IoU")

        return failed_checks(report, phrase)

    def output(self, data_info: dict[str, Any], module: nn.Module) -> dict[str, Any]:
        height, width = (int(v) for v in data_info["image_size"])
        return {
            "name": "logits",
            "kind": "mask",  # the output form predict.py, the server and the monitor read
            "shape": ["batch", len(data_info["class_names"]), height, width],
            "meaning": "per-pixel logits at the input's resolution; argmax over axis 1 gives "
            "each pixel's class index in class_names order (resize it back to the original "
            "image with nearest-neighbour)",
            "softmax_applied": False,
        }

    def summary(self, report: dict[str, Any]) -> list[str]:
        return int8_summary(report, "miou", "val mIoU")
