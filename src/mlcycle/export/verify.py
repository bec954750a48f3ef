"""What every task's check against eager shares: the artifacts and how to run them, checks
and reports, and the plain-text tables. Each task's own comparison lives beside its exporter
(``classification_verify``, ``segmentation``, ``detection_verify``)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

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


def logits_table(
    report: dict[str, Any],
    checkpoint: str,
    heads: tuple[str, str, str, str],
    agree: Callable[[dict[str, Any]], str],
    keys: tuple[str, str],
) -> str:
    """The table of a model with logits: max |logit diff|, then ``heads``' columns: how often
    the artifact's argmax is eager's (``agree(row)``), the accuracy and the metric (``keys``)
    and the metric's change from eager (``<metric>_change``)."""
    acc, metric = keys
    eager = report["eager"]
    return artifact_table(
        report,
        checkpoint,
        ("artifact", "size", "images", "max|dlogit|", *heads, "check"),
        ("-", "-", f"{eager[acc]:.4f}", f"{eager[metric]:.4f}", "-"),
        lambda r: (
            f"{r['max_abs_logit_diff']:.2e}",
            agree(r),
            f"{r[acc]:.4f}",
            f"{r[metric]:.4f}",
            f"{r[metric + '_change']:+.4f}",
        ),
    )


def render(head: tuple[str, ...], lines: list[tuple[str, ...]]) -> str:
    """Rows of strings as a left-aligned plain-text table."""
    widths = [max(len(r[i]) for r in [head, *lines]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*r).rstrip() for r in [head, *lines])
