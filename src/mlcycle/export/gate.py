"""The run's objective at export: its gate on val, refused unless forced, and ``max_size_mb``
measured on the file a device would load."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from mlcycle.core.errors import UserError
from mlcycle.core.objective import Gate, Objective, parse_objective, train_gate
from mlcycle.run.loader import Run


def val_gate(run: Run, metrics: dict[str, Any]) -> tuple[Objective | None, Gate | None]:
    """The run's objective and its gate on val: metrics.json's, else computed from it."""
    objective = parse_objective(run.config.get("objective"))
    if objective is None:
        return None, None
    if "gate" in metrics:
        return objective, Gate.from_dict(metrics["gate"])
    return objective, train_gate(objective, metrics)


def gate_of_run(run: Run, force: bool) -> tuple[dict[str, Any], Objective | None, Gate | None]:
    """The run's ``metrics.json``, its objective and its gate on val; a failed gate is refused
    unless ``force``."""
    metrics_file = run.path / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    objective, gate = val_gate(run, metrics)
    check_gate_passed(run, gate, force)
    return metrics, objective, gate


def check_gate_passed(run: Run, gate: Gate | None, force: bool) -> None:
    """Refuse a run that failed its objective on val, unless ``--force``."""
    if gate is None or gate.passed:
        return
    failed = "; ".join(c["detail"] for c in gate.failed())
    if not force:
        raise UserError(
            f"run '{run.path}' failed its objective on val ({failed}); retrain, "
            "or export anyway with --force"
        )
    print(
        f"warning: exporting a run that failed its objective on val ({failed}) [--force]",
        file=sys.stderr,
    )


def export_gate(
    objective: Objective | None, gate: Gate | None, metrics: dict[str, Any], files: list[Path]
) -> Gate | None:
    """The val gate, with ``max_size_mb`` measured on the exported file a device would load
    (the INT8 ONNX, else the ONNX, else TorchScript)."""
    if objective is None or objective.max_size_mb is None or not files:
        return gate
    path = files[-1]
    sized = train_gate(objective, metrics, size_mb=path.stat().st_size / 1e6)
    for check in sized.checks:
        if check["name"] == "max_size_mb":
            check["detail"] += f" ({path.name})"
    return sized
