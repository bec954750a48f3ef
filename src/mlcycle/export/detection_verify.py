"""Detection export verification: eager's detections against each artifact's.

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

from mlcycle.export.verify import (
    Artifact,
    check,
    float_batch,
    load_runner,
    report,
    with_checks,
)
from mlcycle.tasks.detection import detection_metric

MAX_BOX_DIFF = 1e-3  # pixels
MAX_SCORE_DIFF = 1e-4
MAX_MAP_CHANGE = 1e-3


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


class _Comparison:
    """One artifact's detections against eager's, image by image: counts and worst
    differences, and the mAP of each side as returned and with ties ranked alike."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.as_returned = detection_metric()
        # eager and the artifact once more: ties ranked alike, lone ties left out
        self.ranked = {"eager": detection_metric(), name: detection_metric()}
        self.totals: dict[str, Any] = {
            "detections": 0,
            "matched": 0,
            "unmatched": 0,
            "unmatched_beyond_ties": 0,
            "max_box_diff": 0.0,
            "max_score_diff": 0.0,
        }

    def update(
        self,
        ref: tuple[np.ndarray, ...],
        got: tuple[np.ndarray, ...],
        truth: dict[str, Any],
        max_box: float,
        max_score: float,
    ) -> None:
        self.as_returned.update([_as_metric_input(got)], [truth])
        pair = match_detections(ref, got, max_box, max_score)
        # the compared mAP leaves out the ties either side kept alone, on both sides
        both = {
            "eager": _without(ref, pair["ties_ref"]),
            self.name: _without(got, pair["ties_got"]),
        }
        for side, found in both.items():
            self.ranked[side].update([_as_metric_input(_ranked(found, max_score))], [truth])
        t = self.totals
        t["detections"] += len(got[1])
        for key in ("matched", "unmatched", "unmatched_beyond_ties"):
            t[key] += pair[key]
        for key in ("max_box_diff", "max_score_diff"):
            t[key] = max(t[key], pair[key])

    def row(self, artifact: Artifact, images: int, eager_map: dict[str, float]) -> dict[str, Any]:
        """The artifact's report row, its checks included."""
        scores = _map(self.as_returned)
        change = {f"{k}_change": scores[k] - eager_map[k] for k in scores}
        ours, theirs = _map(self.ranked[self.name]), _map(self.ranked["eager"])
        ranked_change = max(abs(ours[k] - theirs[k]) for k in ours)
        row = {**artifact.row(images), **self.totals, **scores, **change}
        checks = [
            check("unmatched_detections_beyond_ties", row["unmatched_beyond_ties"], 0),
            check("map_change", ranked_change, MAX_MAP_CHANGE),
        ]
        return with_checks(row, checks)


def verify_detection(
    eager: nn.Module,
    artifacts: list[Artifact],
    images: Any,
    max_box_diff: float = MAX_BOX_DIFF,
    max_score_diff: float = MAX_SCORE_DIFF,
) -> dict[str, Any]:
    """``images`` yields ``(x [1, C, H, W], target)``; target boxes and labels as in training."""
    runners = {a.name: load_runner(a, all_outputs=True) for a in artifacts}
    eager_metric = detection_metric()  # as returned
    compared = {name: _Comparison(name) for name in runners}
    count = eager_detections = 0
    for x, target in images:
        with torch.no_grad():
            ref = _numpy(eager(x))
        truth = {"boxes": target["boxes"], "labels": target["labels"]}
        eager_metric.update([_as_metric_input(ref)], [truth])
        batch = float_batch(x)
        for name, run in runners.items():
            compared[name].update(ref, _numpy(run(batch)), truth, max_box_diff, max_score_diff)
        count += 1
        eager_detections += len(ref[1])
    if not count:
        raise ValueError("no validation images to verify the artifacts on")
    eager_map = _map(eager_metric)
    rows = [compared[a.name].row(a, count, eager_map) for a in artifacts]
    tolerances = {
        "max_box_diff_pixels": max_box_diff,
        "max_score_diff": max_score_diff,
        "max_map_change": MAX_MAP_CHANGE,
    }
    return report(count, tolerances, eager_map, rows, eager_detections=eager_detections)
