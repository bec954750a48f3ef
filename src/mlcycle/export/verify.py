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


def float_batch(x: torch.Tensor) -> np.ndarray:
    """A batch as the artifacts take it: contiguous float32 NCHW."""
    return np.ascontiguousarray(x.numpy(), dtype=np.float32)


def fp32_onnx_size(artifacts: list[Artifact]) -> int | None:
    """The size of ``model.onnx`` among ``artifacts``, what INT8 sizes are compared with."""
    return next((a.path.stat().st_size for a in artifacts if a.name == "model.onnx"), None)


def with_checks(row: dict[str, Any], checks: list[dict[str, Any]]) -> dict[str, Any]:
    """``row`` with its ``checks`` and whether all of them ``passed``."""
    row["checks"] = checks
    row["passed"] = all(c["passed"] for c in checks)
    return row


def precision_checks(
    row: dict[str, Any],
    artifact: Artifact,
    fp32: list[dict[str, Any]],
    int8: list[dict[str, Any]],
    fp32_size: int | None,
) -> dict[str, Any]:
    """``row`` with the ``fp32`` checks for an FP32 artifact, otherwise the ``int8`` ones and
    its size relative to ``model.onnx`` (``fp32_size``)."""
    if artifact.precision == "fp32":
        return with_checks(row, fp32)
    row["checks"] = int8  # keeps the report's key order: checks, size ratio, passed
    if fp32_size:
        row["size_vs_fp32_onnx"] = row["size_bytes"] / fp32_size
    return with_checks(row, int8)


def report(
    images: int,
    tolerances: dict[str, float],
    eager: dict[str, float],
    rows: list[dict[str, Any]],
    **counts: int,
) -> dict[str, Any]:
    """A verification report: split size, other ``counts``, tolerances, eager, the rows."""
    return {
        "split": "val",
        "images": images,
        **counts,
        "tolerances": tolerances,
        "eager": eager,
        "artifacts": rows,
        "passed": all(r["passed"] for r in rows),
    }


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
    head = ("artifact", "size", "images", "max|dlogit|", "top-1 agree", "acc", "macro F1", "dF1", "check")  # fmt: skip
    eager = report["eager"]
    return artifact_table(
        report,
        checkpoint,
        head,
        ("-", "-", f"{eager['accuracy']:.4f}", f"{eager['macro_f1']:.4f}", "-"),
        lambda r: (
            f"{r['max_abs_logit_diff']:.2e}",
            f"{r['top1_agree']}/{r['images']}",
            f"{r['accuracy']:.4f}",
            f"{r['macro_f1']:.4f}",
            f"{r['macro_f1_change']:+.4f}",
        ),
    )


def artifact_table(
    report: dict[str, Any],
    checkpoint: str,
    head: tuple[str, ...],
    eager_cells: tuple[str, ...],
    cells: Callable[[dict[str, Any]], tuple[str, ...]],
) -> str:
    """A report as a table: eager's line (name, ``-``, images, ``eager_cells``, ``reference``)
    then each artifact's (file, size, images, ``cells(row)``, ``pass`` or ``FAIL``)."""
    lines = [(f"eager ({checkpoint})", "-", str(report["images"]), *eager_cells, "reference")]
    for r in report["artifacts"]:
        lines.append(
            (r["file"], size_text(r["size_bytes"]), str(r["images"]), *cells(r),
             "pass" if r["passed"] else "FAIL")
        )  # fmt: skip
    return render(head, lines)


def render(head: tuple[str, ...], lines: list[tuple[str, ...]]) -> str:
    """Rows of strings as a left-aligned plain-text table."""
    widths = [max(len(r[i]) for r in [head, *lines]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*r).rstrip() for r in [head, *lines])
