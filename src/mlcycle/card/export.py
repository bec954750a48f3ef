"""The model card's export section: the files, their verification, and their latency."""

from __future__ import annotations

import os
import platform
from typing import Any

from mlcycle.card.facts import Facts
from mlcycle.card.html import Section, Verdict, section
from mlcycle.card.stats import onnx_latency_ms


def measure_latency(facts: Facts) -> dict[str, Any] | None:
    """Batch-1 latency of the exported FP32 ONNX model on one CPU thread, measured now;
    ``None`` without one, or when its input has no fixed shape (a table's named columns)."""
    meta = facts.model_json
    if not meta or "onnx" not in meta.get("files", {}) or "shape" not in meta.get("input", {}):
        return None
    path = facts.run.path / "export" / meta["files"]["onnx"]
    if not path.is_file():
        return None
    measured = onnx_latency_ms(path, list(meta["input"]["shape"]))
    if measured is not None:
        measured["device"] = f"{platform.machine()}, {os.cpu_count()} cores"
    return measured


def _artifact_row(facts: Facts, artifact: dict[str, Any]) -> tuple[object, ...]:
    numbers = "; ".join(f"{k} {v:.3g}" for k, v in facts.part.check_values(artifact))
    size = artifact.get("size_bytes")
    passed = artifact.get("passed")
    return (
        artifact.get("file"),
        f"{artifact.get('format')} {artifact.get('precision')}",
        f"{size / 1e6:.2f} MB" if size else None,
        numbers,
        Verdict(passed, "pass" if passed else "FAIL"),
    )


def export(facts: Facts, latency: dict[str, Any] | None) -> Section:
    meta, report = facts.model_json, facts.verification or {}
    if not meta:
        return section("export", "Export", input=None)
    artifacts, count, unit = facts.part.verified(report)
    return section(
        "export",
        "Export and latency",
        input=meta["input"],
        exported_at=meta.get("exported_at"),
        checkpoint=meta.get("checkpoint", {}).get("file"),
        images=count,
        unit=unit,
        split=report.get("split", "val"),
        rows=[_artifact_row(facts, a) for a in artifacts],
        latency=latency,
    )
