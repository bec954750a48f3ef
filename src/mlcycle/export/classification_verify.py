"""Classification's check against eager: every artifact's logits next to the eager model's on
the validation images; FP32 must agree on top-1 everywhere, INT8 may lose a little macro F1."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import nn

from mlcycle.export.verify import (
    MAX_F1_DROP,
    MAX_LOGIT_DIFF,
    Artifact,
    Runner,
    check,
    drop_phrase,
    failed_checks,
    float_batch,
    fp32_onnx_size,
    load_runner,
    logit_phrase,
    logits_table,
    precision_checks,
    report,
)
from mlcycle.tasks.classification import classification_metrics


def _scores(logits: np.ndarray, target: torch.Tensor, num_classes: int) -> dict[str, float]:
    """Accuracy and macro F1 as training and ``evaluate.py`` define them
    (``classification_metrics``)."""
    values = classification_metrics(num_classes)(torch.from_numpy(logits), target)
    return {"accuracy": float(values["acc"]), "macro_f1": float(values["f1"])}


def _collect_logits(
    eager: nn.Module,
    runners: dict[str, Runner],
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
) -> tuple[dict[str, np.ndarray], torch.Tensor]:
    """The logits of eager and of every runner over all batches, and the targets."""
    outputs: dict[str, list[np.ndarray]] = {name: [] for name in ["eager", *runners]}
    targets = []
    for x, y in batches:
        with torch.no_grad():
            outputs["eager"].append(eager(x).float().numpy())
        batch = float_batch(x)
        for name, run in runners.items():
            outputs[name].append(np.asarray(run(batch), dtype=np.float32))
        targets.append(y)
    if not targets:
        raise ValueError("no validation images to verify the artifacts on")
    logits = {name: np.concatenate(parts) for name, parts in outputs.items()}
    return logits, torch.cat(targets).long()


def _classification_row(
    artifact: Artifact,
    out: np.ndarray,
    reference: np.ndarray,
    target: torch.Tensor,
    eager_scores: dict[str, float],
    num_classes: int,
) -> dict[str, Any]:
    """One artifact's logits against eager's: differences, top-1 agreement and scores."""
    diff = np.abs(out.astype(np.float64) - reference)
    agree = int((out.argmax(1) == reference.argmax(1)).sum())
    scores = _scores(out, target, num_classes)
    return {
        **artifact.row(len(target)),
        "max_abs_logit_diff": float(diff.max()),
        "mean_abs_logit_diff": float(diff.mean()),
        "top1_agree": agree,
        "top1_agreement": agree / len(target),
        **scores,
        "accuracy_change": scores["accuracy"] - eager_scores["accuracy"],
        "macro_f1_change": scores["macro_f1"] - eager_scores["macro_f1"],
    }


def verify(
    eager: nn.Module,
    artifacts: list[Artifact],
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    num_classes: int,
    max_logit_diff: float = MAX_LOGIT_DIFF,
    max_f1_drop: float = MAX_F1_DROP,
) -> dict[str, Any]:
    """Logits of the eager model and of each artifact on the same batches, compared."""
    runners = {a.name: load_runner(a) for a in artifacts}
    logits, target = _collect_logits(eager.eval(), runners, batches)
    reference = logits["eager"]
    eager_scores = _scores(reference, target, num_classes)
    fp32_size = fp32_onnx_size(artifacts)
    rows = []
    for artifact in artifacts:
        row = _classification_row(
            artifact, logits[artifact.name], reference, target, eager_scores, num_classes
        )
        fp32 = [
            check("max_abs_logit_diff", row["max_abs_logit_diff"], max_logit_diff),
            check("top1_mismatches", len(target) - row["top1_agree"], 0),
        ]
        drop = eager_scores["macro_f1"] - row["macro_f1"]
        int8 = [check("macro_f1_drop", drop, max_f1_drop)]
        rows.append(precision_checks(row, artifact, fp32, int8, fp32_size))
    tolerances = {"max_abs_logit_diff": max_logit_diff, "max_macro_f1_drop": max_f1_drop}
    return report(len(target), tolerances, eager_scores, rows)


def failures(report: dict[str, Any]) -> list[str]:
    """One phrase per failed check: which artifact and by how much."""

    def phrase(row: dict[str, Any], check: dict[str, Any]) -> str:
        if check["name"] == "max_abs_logit_diff":
            return logit_phrase(row, check)
        if check["name"] == "top1_mismatches":
            return f"{row['file']}: top-1 differs from eager on {check['value']} of {row['images']} images"
        return drop_phrase(row, check, "val macro F1")

    return failed_checks(report, phrase)


def format_table(report: dict[str, Any], checkpoint: str = "checkpoint") -> str:
    """The verification as a plain-text table, one row per artifact."""
    return logits_table(
        report,
        checkpoint,
        ("top-1 agree", "acc", "macro F1", "dF1"),
        lambda r: f"{r['top1_agree']}/{r['images']}",
        ("accuracy", "macro_f1"),
    )
