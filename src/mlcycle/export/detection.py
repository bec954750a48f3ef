"""Detection export: one image in, its final detections out, post-processing included.

The graph holds the whole detector: backbone, head, box decoding, score threshold, per-class
NMS and the cap on detections per image (ONNX ``NonMaxSuppression``). It takes one image,
``input`` [1, C, H, W] (torchvision detectors batch a list of images, so the batch is fixed at
one), and returns ``boxes`` [n, 4] (x1, y1, x2, y2 in pixels of the input), ``scores`` [n] and
``labels`` [n] (class indices from 0), with ``n`` dynamic.

Verification (``detection_verify``) matches eager's detections with each artifact's one to one.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mlcycle.core.errors import UserError
from mlcycle.export.detection_verify import match_detections, verify_detection

__all__ = ["DetectionExport", "DetectorOutputs", "match_detections", "post_processing"]
from mlcycle.export.exporters import TaskExport, Verification, register_export
from mlcycle.export.onnx_export import OnnxIO
from mlcycle.export.verify import artifact_table, failed_checks

OUTPUTS = ("boxes", "scores", "labels")
MIN_OPSET = 11  # torchvision's detectors export from opset 11


class DetectorOutputs(nn.Module):
    """A torchvision-style detector as a function of one image tensor, labels from 0."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        found = self.detector(list(x))[0]
        return found["boxes"], found["scores"], found["labels"] - 1


def post_processing(detector: nn.Module) -> dict[str, Any]:
    """The thresholds baked into the graph, where the detector keeps them."""
    holder = getattr(detector, "roi_heads", detector)  # Faster R-CNN keeps them in roi_heads
    return {
        "included": True,
        "score_threshold": getattr(holder, "score_thresh", None),
        "nms_iou_threshold": getattr(holder, "nms_thresh", None),
        "max_detections": getattr(holder, "detections_per_img", None),
    }


@register_export("detection")
class DetectionExport(TaskExport):
    io = OnnxIO(outputs=OUTPUTS, dynamic_axes={name: {0: "detections"} for name in OUTPUTS})
    quantizable = False
    headline = "val/map"

    def module(self, task: Any) -> nn.Module:
        return DetectorOutputs(task.model)

    def check_options(self, args: Any) -> None:
        if args.quantize:
            raise UserError(
                "--quantize int8 is not offered for detection models yet; export FP32 "
                "(drop --quantize)"
            )
        if "onnx" in args.format:
            if args.exporter != "torchscript":
                raise UserError(
                    "detection exports with --exporter torchscript only: torch.export, which "
                    "the dynamo exporter starts from, fails on torchvision's detectors"
                )
            if args.opset < MIN_OPSET:
                raise UserError(
                    f"--opset {args.opset} is too old for a detector; use {MIN_OPSET} or later"
                )

    def batches(self, dataset: Any, batch_size: int) -> Any:
        """One image at a time: the graph's batch is fixed at one."""
        for i in range(len(dataset)):
            x, target, *_ = dataset[i]
            yield x.float().unsqueeze(0), target

    def verify(self, job: Verification) -> dict[str, Any]:
        args = job.args
        return verify_detection(
            job.module,
            job.artifacts,
            self.batches(job.dataset, 1),
            max_box_diff=args.max_box_diff,
            max_score_diff=args.max_score_diff,
        )

    def table(self, report: dict[str, Any], checkpoint: str) -> str:
        head = ("artifact", "size", "images", "detections", "matched", "max|dbox| px", "max|dscore|", "mAP", "mAP@0.5", "check")  # fmt: skip
        eager, found = report["eager"], report["eager_detections"]
        return artifact_table(
            report,
            checkpoint,
            head,
            (str(found), "-", "-", "-", f"{eager['map']:.4f}", f"{eager['map_50']:.4f}"),
            lambda r: (
                str(r["detections"]),
                f"{r['matched']}/{found}",
                f"{r['max_box_diff']:.2e}",
                f"{r['max_score_diff']:.2e}",
                f"{r['map']:.4f}",
                f"{r['map_50']:.4f}",
            ),
        )

    def failures(self, report: dict[str, Any]) -> list[str]:
        tol = report["tolerances"]

        def phrase(row: dict[str, Any], c: dict[str, Any]) -> str:
            if c["name"] == "map_change":
                return f"{row['file']}: val mAP differs from eager by {c['value']:.4f} (limit {c['limit']:g})"
            return (
                f"{row['file']}: {c['value']} detections have no counterpart in eager's (box "
                f"within {tol['max_box_diff_pixels']:g} px, score within {tol['max_score_diff']:g}, "
                "same label)"
            )

        return failed_checks(report, phrase)

    def output(self, data_info: dict[str, Any], module: nn.Module) -> dict[str, Any]:
        detector = getattr(module, "detector", module)
        return {
            "kind": "boxes",  # the output form predict.py, the server and the monitor read
            "batch": 1,
            "outputs": [
                {
                    "name": "boxes",
                    "dtype": "float32",
                    "shape": ["detections", 4],
                    "meaning": "x1, y1, x2, y2 in pixels of the model input (input.width x "
                    "input.height); scale x by original_width / input.width and y by "
                    "original_height / input.height for the original image",
                },
                {
                    "name": "scores",
                    "dtype": "float32",
                    "shape": ["detections"],
                    "meaning": "confidence in 0..1, highest first",
                },
                {
                    "name": "labels",
                    "dtype": "int64",
                    "shape": ["detections"],
                    "meaning": "class index from 0 in class_names order",
                },
            ],
            "post_processing": post_processing(detector),
            "category_ids": data_info.get("category_ids"),
        }
