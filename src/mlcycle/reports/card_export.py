"""The model card's export section: the files, their verification, and their latency."""

from __future__ import annotations

import os
import platform
from typing import Any

from mlcycle.reports.card_facts import Facts
from mlcycle.reports.card_html import esc, table, verdict
from mlcycle.reports.card_stats import onnx_latency_ms

# verification.json numbers worth showing, where an artifact has them (per task)
CHECKS = (
    "max_abs_logit_diff",
    "top1_agreement",
    "macro_f1_change",
    "accuracy_change",
    "pixel_agreement",
    "miou_change",
    "max_box_diff",
    "max_score_diff",
    "map_change",
)


def measure_latency(facts: Facts) -> dict[str, Any] | None:
    """Batch-1 latency of the exported FP32 ONNX model on one CPU thread, measured now."""
    meta = facts.model_json
    if not meta or "onnx" not in meta.get("files", {}):
        return None
    path = facts.run.path / "export" / meta["files"]["onnx"]
    if not path.is_file():
        return None
    measured = onnx_latency_ms(path, list(meta["input"]["shape"]))
    if measured is not None:
        measured["device"] = f"{platform.machine()}, {os.cpu_count()} cores"
    return measured


def export(facts: Facts, latency: dict[str, Any] | None) -> tuple[str, str, str]:
    meta, report = facts.model_json, facts.verification or {}
    if not meta:
        text = "Not exported. <code>python scripts/export.py --run RUN</code> writes TorchScript and ONNX files, each verified against the PyTorch model."
        return ("export", "Export", f"<p>{text}</p>")
    rows = []
    for artifact in report.get("artifacts", []):
        numbers = "; ".join(
            f"{k} {artifact[k]:.3g}" for k in CHECKS if isinstance(artifact.get(k), float)
        )
        size = artifact.get("size_bytes")
        rows.append(
            (
                artifact.get("file"),
                f"{artifact.get('format')} {artifact.get('precision')}",
                f"{size / 1e6:.2f} MB" if size else None,
                numbers,
                verdict(artifact.get("passed"), "pass" if artifact.get("passed") else "FAIL"),
            )
        )
    body = (
        f"<p>Input {esc(meta['input'].get('shape'))} ({esc(meta['input'].get('layout'))}), "
        f"exported {esc(meta.get('exported_at'))} from {esc(meta.get('checkpoint', {}).get('file'))}. "
        f"Verified on {esc(report.get('images'))} {esc(report.get('split', 'val'))} images against "
        "the PyTorch model:</p>"
    )
    body += table(("file", "kind", "size", "agreement with PyTorch", "check"), rows)
    if latency:
        body += (
            f"<p>Latency of model.onnx, one image (batch 1), one CPU thread, measured by "
            f"report.py on {esc(latency['device'])}: median {latency['median_ms']:.3g} ms, "
            f"95th percentile {latency['p95_ms']:.3g} ms. The serving machine decides the real figure.</p>"
        )
    return ("export", "Export and latency", body)
