"""Detection export: one image in, its final detections out, post-processing included.

The graph holds the whole detector: backbone, head, box decoding, score threshold, per-class
NMS and the cap on detections per image (ONNX ``NonMaxSuppression``). It takes one image,
``input`` [1, C, H, W] (torchvision detectors batch a list of images, so the batch is fixed at
one), and returns ``boxes`` [n, 4] (x1, y1, x2, y2 in pixels of the input), ``scores`` [n] and
``labels`` [n] (class indices from 0), with ``n`` dynamic.

Verification runs every validation image through eager and each artifact and matches their
detections one to one (same label, box within ``--max-box-diff`` pixels, score within
``--max-score-diff``). A detection left unmatched fails the check unless its score is within
``--max-score-diff`` of the lowest score in its own list: a tie at the score threshold or the
detections-per-image cut-off. The mAP of each artifact must equal eager's within 1e-3, both
computed without those excused ties and with scores that tie within ``--max-score-diff`` ranked
alike (an untrained detector gives many equal scores, and which of them NMS keeps, or in what
order a runtime returns them, is arbitrary).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from mlcycle.errors import UserError
from mlcycle.export.onnx_export import OnnxIO
from mlcycle.export.tasks import TaskExport, Verification, register_export
from mlcycle.export.verify import (
    Artifact,
    check,
    failed_checks,
    load_runner,
    render,
    size_text,
)
from mlcycle.tasks.detection import detection_metric

OUTPUTS = ("boxes", "scores", "labels")
MIN_OPSET = 11  # torchvision's detectors export from opset 11
MAX_BOX_DIFF = 1e-3  # pixels
MAX_SCORE_DIFF = 1e-4
MAX_MAP_CHANGE = 1e-3


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


def match_detections(
    ref: tuple[np.ndarray, ...], got: tuple[np.ndarray, ...], max_box: float, max_score: float
) -> dict[str, Any]:
    """Pair each reference detection (highest score first) with the closest unused one of the
    same label within the tolerances; count what stays alone, and what is not a cut-off tie.
    ``ties_ref`` / ``ties_got`` flag the unpaired detections excused as ties."""
    rb, rs, rl = ref
    gb, gs, gl = got
    used = np.zeros(len(gs), dtype=bool)
    paired = np.zeros(len(rs), dtype=bool)
    box_diff = score_diff = 0.0
    for i in np.argsort(-rs, kind="stable"):
        cand = np.flatnonzero(~used & (gl == rl[i]))
        if cand.size:
            d = np.abs(gb[cand].astype(np.float64) - rb[i]).max(axis=1)
            sd = np.abs(gs[cand].astype(np.float64) - rs[i])
            ok = (d <= max_box) & (sd <= max_score)
            if ok.any():
                k = int(np.argmin(np.where(ok, d, np.inf)))
                used[cand[k]], paired[i] = True, True
                box_diff, score_diff = max(box_diff, d[k]), max(score_diff, sd[k])
    ties_ref = ~paired & (rs <= rs.min(initial=np.inf) + max_score)
    ties_got = ~used & (gs <= gs.min(initial=np.inf) + max_score)
    alone = int((~paired).sum() + (~used).sum())
    return {
        "matched": int(used.sum()),
        "unmatched": alone,
        "unmatched_beyond_ties": alone - int(ties_ref.sum() + ties_got.sum()),
        "max_box_diff": float(box_diff),
        "max_score_diff": float(score_diff),
        "ties_ref": ties_ref,
        "ties_got": ties_got,
    }


def _without(found: tuple[np.ndarray, ...], drop: np.ndarray) -> tuple[np.ndarray, ...]:
    return tuple(a[~drop] for a in found)


def _numpy(outputs: Any) -> tuple[np.ndarray, ...]:
    boxes, scores, labels = (
        t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t) for t in outputs
    )
    return (
        boxes.astype(np.float32).reshape(-1, 4),
        scores.astype(np.float32),
        labels.astype(np.int64),
    )


def _ranked(found: tuple[np.ndarray, ...], step: float) -> tuple[np.ndarray, ...]:
    """Scores rounded to ``step`` and detections in one canonical order: detections whose
    scores tie within the tolerance rank alike in eager and artifact, so the mAP compared does
    not hang on the order a runtime happens to return ties in (untrained models tie a lot)."""
    boxes, scores, labels = found
    scores = (np.round(scores.astype(np.float64) / step) * step).astype(np.float32)
    keys = (*np.round(boxes, 2).T[::-1], labels, -scores)
    order = np.lexsort(keys)
    return boxes[order], scores[order], labels[order]


def _as_metric_input(found: tuple[np.ndarray, ...]) -> dict[str, torch.Tensor]:
    boxes, scores, labels = found
    return {
        "boxes": torch.from_numpy(boxes),
        "scores": torch.from_numpy(scores),
        "labels": torch.from_numpy(labels),
    }


def _map(metric: Any) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = metric.compute()
    return {"map": float(values["map"]), "map_50": float(values["map_50"])}


def verify_detection(
    eager: nn.Module,
    artifacts: list[Artifact],
    images: Any,
    max_box_diff: float = MAX_BOX_DIFF,
    max_score_diff: float = MAX_SCORE_DIFF,
) -> dict[str, Any]:
    """``images`` yields ``(x [1, C, H, W], target)``; target boxes and labels as in training."""
    runners = {a.name: load_runner(a, all_outputs=True) for a in artifacts}
    metrics = {name: detection_metric() for name in ["eager", *runners]}  # as returned
    # per artifact, eager and the artifact once more: ties ranked alike, lone ties left out
    ranked = {f"{a}:{side}": detection_metric() for a in runners for side in ("eager", a)}
    totals = {
        name: {
            "detections": 0,
            "matched": 0,
            "unmatched": 0,
            "unmatched_beyond_ties": 0,
            "max_box_diff": 0.0,
            "max_score_diff": 0.0,
        }
        for name in runners
    }
    count = eager_detections = 0
    for x, target in images:
        with torch.no_grad():
            ref = _numpy(eager(x))
        truth = {"boxes": target["boxes"], "labels": target["labels"]}
        metrics["eager"].update([_as_metric_input(ref)], [truth])
        batch = np.ascontiguousarray(x.numpy(), dtype=np.float32)
        for name, run in runners.items():
            got = _numpy(run(batch))
            metrics[name].update([_as_metric_input(got)], [truth])
            pair = match_detections(ref, got, max_box_diff, max_score_diff)
            # the compared mAP leaves out the ties either side kept alone, on both sides
            both = {"eager": _without(ref, pair["ties_ref"]), name: _without(got, pair["ties_got"])}
            for side, found in both.items():
                ranked[f"{name}:{side}"].update(
                    [_as_metric_input(_ranked(found, max_score_diff))], [truth]
                )
            t = totals[name]
            t["detections"] += len(got[1])
            for key in ("matched", "unmatched", "unmatched_beyond_ties"):
                t[key] += pair[key]
            for key in ("max_box_diff", "max_score_diff"):
                t[key] = max(t[key], pair[key])
        count += 1
        eager_detections += len(ref[1])
    if not count:
        raise ValueError("no validation images to verify the artifacts on")
    eager_map = _map(metrics["eager"])
    rows = []
    for artifact in artifacts:
        name = artifact.name
        scores = _map(metrics[name])
        change = {f"{k}_change": scores[k] - eager_map[k] for k in scores}
        ours, theirs = _map(ranked[f"{name}:{name}"]), _map(ranked[f"{name}:eager"])
        ranked_change = max(abs(ours[k] - theirs[k]) for k in ours)
        row: dict[str, Any] = {
            **artifact.row(count),
            **totals[artifact.name],
            **scores,
            **change,
        }
        row["checks"] = [
            check("unmatched_detections_beyond_ties", row["unmatched_beyond_ties"], 0),
            check("map_change", ranked_change, MAX_MAP_CHANGE),
        ]
        row["passed"] = all(c["passed"] for c in row["checks"])
        rows.append(row)
    return {
        "split": "val",
        "images": count,
        "eager_detections": eager_detections,
        "tolerances": {
            "max_box_diff_pixels": max_box_diff,
            "max_score_diff": max_score_diff,
            "max_map_change": MAX_MAP_CHANGE,
        },
        "eager": eager_map,
        "artifacts": rows,
        "passed": all(r["passed"] for r in rows),
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
        eager = report["eager"]
        lines = [
            (f"eager ({checkpoint})", "-", str(report["images"]), str(report["eager_detections"]),
             "-", "-", "-", f"{eager['map']:.4f}", f"{eager['map_50']:.4f}", "reference"),
        ]  # fmt: skip
        for r in report["artifacts"]:
            lines.append(
                (r["file"], size_text(r["size_bytes"]), str(r["images"]), str(r["detections"]),
                 f"{r['matched']}/{report['eager_detections']}", f"{r['max_box_diff']:.2e}",
                 f"{r['max_score_diff']:.2e}", f"{r['map']:.4f}", f"{r['map_50']:.4f}",
                 "pass" if r["passed"] else "FAIL")
            )  # fmt: skip
        return render(head, lines)

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
