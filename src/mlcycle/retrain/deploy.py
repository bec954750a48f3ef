"""What the server sees: the champion's ONNX model, exported by export.py, and the pointer.

The server contract: it watches ``<registry dir>/champion`` (one line: the champion's run
directory) and, when its content changes or on SIGHUP, loads ``<run>/export/model.onnx`` with
``<run>/export/model.json``. retrain.py exports before it writes the pointer, and writes the
pointer atomically, so the model file always exists when the pointer names it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlcycle.run.loader import Run, sha256

ONNX = Path("export") / "model.onnx"


def exported(run: Run) -> bool:
    """Whether ``export/model.onnx`` exists and was exported from the current best checkpoint."""
    meta_file = run.path / "export" / "model.json"
    if not (run.path / ONNX).is_file() or not meta_file.is_file():
        return False
    try:
        recorded = json.loads(meta_file.read_text())["checkpoint"]["sha256"]
    except (ValueError, KeyError, TypeError):
        return False
    return recorded == sha256(run.checkpoint("best"))


def ensure_exported(run: Run) -> dict[str, Any]:
    """Export ``run`` to ONNX with export.py (verified against the eager model) unless an export
    of its best checkpoint is there; ``{"onnx": path, "model_sha256": ...}``.

    Raises export.py's :class:`~mlcycle.core.errors.UserError` (a failed val gate, a failed
    verification) for the caller to decide on."""
    if not exported(run):
        from mlcycle.export.run_export import ExportOptions, export_run

        export_run(ExportOptions(run=str(run.path), format=["onnx"]))
    path = (run.path / ONNX).resolve()
    return {"onnx": str(path), "model_sha256": sha256(path)}
