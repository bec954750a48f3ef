"""``GET /v1/model``: the model card of the served model, from the files beside it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlcycle.serve.model import ServedModel


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def data_fingerprint(meta: dict[str, Any], model_path: Path) -> str | None:
    """model.json's fingerprint of the training data when it has one, else the run's data.json
    (the model in RUN/export)."""
    for value in (meta.get("data_fingerprint"), (meta.get("data") or {}).get("fingerprint")):
        if value:
            return str(value)
    data_info = _read_json(model_path.parent.parent / "data.json") or {}
    return data_info.get("fingerprint")


def verification(meta: dict[str, Any], model_path: Path) -> dict[str, Any] | None:
    """The export check of the served file: passed, and its row of verification.json."""
    summary = meta.get("verification")
    if not isinstance(summary, dict):
        return None
    out = dict(summary)
    report = _read_json(model_path.parent / str(summary.get("report", "verification.json")))
    for row in (report or {}).get("artifacts", []):
        if isinstance(row, dict) and row.get("file") == model_path.name:
            out["artifact"] = {k: v for k, v in row.items() if k != "checks"}
            out["checks"] = row.get("checks")
    return out


def model_card(model: ServedModel, serving: dict[str, Any]) -> dict[str, Any]:
    """The card: what runs (its input as ``model.card_input`` shows it: a table's schema)."""
    meta = model.meta
    return {
        "model_version": model.version,
        "model_file": model.path.name,
        "task": model.task,
        "output_form": model.form.name,
        "arch": meta.get("arch"),
        "class_names": model.names,
        "input": model.card_input(),
        "validation_metrics": meta.get("validation_metrics") or {},
        "objective": meta.get("objective"),
        "gate": meta.get("gate"),
        "data_fingerprint": data_fingerprint(meta, model.path),
        "verification": verification(meta, model.path),
        "exported_at": meta.get("exported_at"),
        "versions": meta.get("versions"),
        "registry": getattr(model, "registry", None),  # serve --registry: the version served
        "serving": serving,
    }
