"""Run every artifact next to the eager model on validation images and check they agree."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mlcycle.tasks.classification import classification_metrics

Runner = Callable[[np.ndarray], Any]

MAX_LOGIT_DIFF = 1e-4  # FP32 artifacts: max |logit - eager logit|
MAX_F1_DROP = 0.01  # INT8 artifacts: macro F1 may drop by at most one point


@dataclass(frozen=True)
class Artifact:
    path: Path
    format: str  # "torchscript" | "onnx"
    precision: str  # "fp32" | "int8"

    @property
    def name(self) -> str:
        return self.path.name

    def row(self, images: int) -> dict[str, Any]:
        """The start of this artifact's row in a verification report."""
        return {
            "file": self.name,
            "format": self.format,
            "precision": self.precision,
            "size_bytes": self.path.stat().st_size,
            "images": images,
        }


def load_runner(artifact: Artifact, all_outputs: bool = False) -> Runner:
    """A function from a float32 NCHW batch to the first output (logits), or to the list of
    all outputs with ``all_outputs``, for a saved artifact."""
    if artifact.format == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation notice
            module = torch.jit.load(str(artifact.path), map_location="cpu").eval()

        def run_ts(x: np.ndarray) -> Any:
            with torch.no_grad():
                out = module(torch.from_numpy(x))
            if all_outputs:
                return [t.numpy() for t in (out if isinstance(out, tuple | list) else [out])]
            return out.float().numpy()

        return run_ts
    import onnxruntime as ort

    session = ort.InferenceSession(str(artifact.path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run_onnx(x: np.ndarray) -> Any:
        out = session.run(None, {name: x})
        return out if all_outputs else out[0]

    return run_onnx


def _scores(logits: np.ndarray, target: torch.Tensor, num_classes: int) -> dict[str, float]:
    """Accuracy and macro F1 as training and ``evaluate.py`` define them
    (``classification_metrics``)."""
    values = classification_metrics(num_classes)(torch.from_numpy(logits), target)
    return {"accuracy": float(values["acc"]), "macro_f1": float(values["f1"])}


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
    eager = eager.eval()
    outputs: dict[str, list[np.ndarray]] = {name: [] for name in ["eager", *runners]}
    targets = []
    for x, y in batches:
        with torch.no_grad():
            outputs["eager"].append(eager(x).float().numpy())
        batch = np.ascontiguousarray(x.numpy(), dtype=np.float32)
        for name, run in runners.items():
            outputs[name].append(np.asarray(run(batch), dtype=np.float32))
        targets.append(y)
    if not targets:
        raise ValueError("no validation images to verify the artifacts on")
    target = torch.cat(targets).long()
    logits = {name: np.concatenate(parts) for name, parts in outputs.items()}
    reference = logits["eager"]
    eager_scores = _scores(reference, target, num_classes)
    fp32_size = next((a.path.stat().st_size for a in artifacts if a.name == "model.onnx"), None)
    rows = []
    for artifact in artifacts:
        out = logits[artifact.name]
        diff = np.abs(out.astype(np.float64) - reference)
        agree = int((out.argmax(1) == reference.argmax(1)).sum())
        scores = _scores(out, target, num_classes)
        row: dict[str, Any] = {
            **artifact.row(len(target)),
            "max_abs_logit_diff": float(diff.max()),
            "mean_abs_logit_diff": float(diff.mean()),
            "top1_agree": agree,
            "top1_agreement": agree / len(target),
            **scores,
            "accuracy_change": scores["accuracy"] - eager_scores["accuracy"],
            "macro_f1_change": scores["macro_f1"] - eager_scores["macro_f1"],
        }
        if artifact.precision == "fp32":
            row["checks"] = [
                check("max_abs_logit_diff", row["max_abs_logit_diff"], max_logit_diff),
                check("top1_mismatches", len(target) - agree, 0),
            ]
        else:
            drop = eager_scores["macro_f1"] - scores["macro_f1"]
            row["checks"] = [check("macro_f1_drop", drop, max_f1_drop)]
            if fp32_size:
                row["size_vs_fp32_onnx"] = row["size_bytes"] / fp32_size
        row["passed"] = all(c["passed"] for c in row["checks"])
        rows.append(row)
    return {
        "split": "val",
        "images": len(target),
        "tolerances": {"max_abs_logit_diff": max_logit_diff, "max_macro_f1_drop": max_f1_drop},
        "eager": eager_scores,
        "artifacts": rows,
        "passed": all(r["passed"] for r in rows),
    }


def check(name: str, value: float, limit: float) -> dict[str, Any]:
    """One check of a report: passes when ``value <= limit``."""
    return {"name": name, "value": value, "limit": limit, "passed": bool(value <= limit)}


def failed_checks(
    report: dict[str, Any], phrase: Callable[[dict[str, Any], dict[str, Any]], str]
) -> list[str]:
    """``phrase(row, check)`` for every failed check of every artifact."""
    return [phrase(row, c) for row in report["artifacts"] for c in row["checks"] if not c["passed"]]


def logit_phrase(row: dict[str, Any], check: dict[str, Any]) -> str:
    return f"{row['file']}: max |logit diff| {check['value']:.3g} exceeds {check['limit']:g}"


def drop_phrase(row: dict[str, Any], check: dict[str, Any], metric: str) -> str:
    return (
        f"{row['file']}: {metric} dropped {check['value'] * 100:.2f} points "
        f"(limit {check['limit'] * 100:g})"
    )


def failures(report: dict[str, Any]) -> list[str]:
    """One phrase per failed check: which artifact and by how much."""

    def phrase(row: dict[str, Any], check: dict[str, Any]) -> str:
        if check["name"] == "max_abs_logit_diff":
            return logit_phrase(row, check)
        if check["name"] == "top1_mismatches":
            return f"{row['file']}: top-1 differs from eager on {check['value']} of {row['images']} images"
        return drop_phrase(row, check, "val macro F1")

    return failed_checks(report, phrase)


def int8_summary(report: dict[str, Any], key: str, label: str) -> list[str]:
    """``INT8: 73% smaller than model.onnx; <label> a -> b (+x points)``, when there is INT8."""
    int8 = next((r for r in report["artifacts"] if r["precision"] == "int8"), None)
    if int8 is None or "size_vs_fp32_onnx" not in int8:
        return []
    return [
        f"INT8: {(1 - int8['size_vs_fp32_onnx']) * 100:.0f}% smaller than model.onnx; "
        f"{label} {report['eager'][key]:.4f} -> {int8[key]:.4f} "
        f"({int8[key + '_change'] * 100:+.2f} points)"
    ]


def size_text(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def format_table(report: dict[str, Any], checkpoint: str = "checkpoint") -> str:
    """The verification as a plain-text table, one row per artifact."""
    head = (
        "artifact",
        "size",
        "images",
        "max|dlogit|",
        "top-1 agree",
        "acc",
        "macro F1",
        "dF1",
        "check",
    )
    eager = report["eager"]
    lines = [
        (
            f"eager ({checkpoint})",
            "-",
            str(report["images"]),
            "-",
            "-",
            f"{eager['accuracy']:.4f}",
            f"{eager['macro_f1']:.4f}",
            "-",
            "reference",
        ),
    ]
    for row in report["artifacts"]:
        lines.append(
            (
                row["file"],
                size_text(row["size_bytes"]),
                str(row["images"]),
                f"{row['max_abs_logit_diff']:.2e}",
                f"{row['top1_agree']}/{row['images']}",
                f"{row['accuracy']:.4f}",
                f"{row['macro_f1']:.4f}",
                f"{row['macro_f1_change']:+.4f}",
                "pass" if row["passed"] else "FAIL",
            )
        )
    return render(head, lines)


def render(head: tuple[str, ...], lines: list[tuple[str, ...]]) -> str:
    """Rows of strings as a left-aligned plain-text table."""
    widths = [max(len(r[i]) for r in [head, *lines]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*r).rstrip() for r in [head, *lines])
