"""What the model card says, read from a run directory (nothing here writes to it).

The test split is never read here first: test metrics come from ``eval_test.json``, and test
predictions are recomputed (for the bootstrap) only when the run's ``test_ledger.jsonl``
already records a test evaluation of the same checkpoint on the same number of images.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlcycle.card.parts import CardPart, card_part
from mlcycle.core.imports import import_object
from mlcycle.core.objective import (
    Gate,
    Objective,
    eval_gate,
    for_monitor,
    parse_objective,
    run_monitor,
    train_gate,
)
from mlcycle.run.loader import Run, sha256


def _json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


@dataclass
class Facts:
    """A run directory's records."""

    run: Run
    task: str
    monitor: str
    metrics: dict[str, Any]
    evals: dict[str, dict[str, Any]]
    ledger: list[dict[str, Any]]
    skipped: list[dict[str, str]]
    model_json: dict[str, Any] | None
    verification: dict[str, Any] | None
    objective: Objective | None
    part: CardPart  # what the card says about the run's task


def load_facts(run_dir: str | Path) -> Facts:
    run = Run(run_dir)
    task_cls = import_object(run.config["model"]["class_path"], "task class in config.yaml")
    metrics = _json(run.path / "metrics.json") or {}
    evals = {s: e for s in ("val", "test") if (e := _json(run.path / f"eval_{s}.json"))}
    ledger_file = run.path / "test_ledger.jsonl"
    ledger = (
        [json.loads(line) for line in ledger_file.read_text().splitlines() if line.strip()]
        if ledger_file.is_file()
        else []
    )
    skipped = []
    if (run.path / "skipped_files.csv").is_file():
        with (run.path / "skipped_files.csv").open(newline="") as fh:
            skipped = list(csv.DictReader(fh))
    monitor = run_monitor(run.path, task_cls)[0]  # the run's own (regression: val/rmse)
    objective = for_monitor(parse_objective(run.config.get("objective")), monitor)
    return Facts(
        run,
        task_cls.task_name,
        monitor,
        metrics,
        evals,
        ledger,
        skipped,
        _json(run.path / "export" / "model.json"),
        _json(run.path / "export" / "verification.json"),
        objective,
        card_part(task_cls.task_name),
    )


@dataclass
class SplitResult:
    """One split's metrics, where they come from, and their intervals."""

    split: str
    images: int | None
    metrics: dict[str, float]
    source: str
    per_class: dict[str, dict[str, Any]] | None = None
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    gate: Gate | None = None


def _val(facts: Facts) -> SplitResult:
    counts = facts.run.data_info.get("split_counts", {})
    if "val" in facts.evals:
        ev = facts.evals["val"]
        return SplitResult(
            "val",
            ev.get("images"),
            ev["metrics"],
            "eval_val.json (evaluate.py)",
            ev.get("per_class"),
        )
    m = facts.metrics
    scalars = {k[4:]: v for k, v in m.items() if k.startswith("val/") and k.count("/") == 1}
    per_class = {
        k.split("/", 2)[2]: {k.split("/")[1]: v}
        for k, v in m.items()
        if k.startswith(f"{facts.monitor}/")
    }
    source = f"metrics.json (best epoch {m.get('best_epoch')})"
    return SplitResult("val", counts.get("val"), scalars, source, per_class or None)


def _test(facts: Facts) -> SplitResult | None:
    ev = facts.evals.get("test")
    if ev is None:
        return None
    source = (
        "eval_test.json (retrain.py holdout)" if "holdout" in ev else "eval_test.json (evaluate.py)"
    )
    return SplitResult("test", ev.get("images"), ev["metrics"], source, ev.get("per_class"))


def recompute_blocker(facts: Facts, result: SplitResult, predict: bool) -> str | None:
    """Why ``result``'s per-image predictions may not be recomputed; ``None`` when they may."""
    if not predict:
        return "--no-predict"
    if not facts.run.path.joinpath("checkpoints", "best.ckpt").is_file():
        return "the run has no best checkpoint"
    if result.split != "test":
        return None
    ev = facts.evals["test"]
    if not facts.ledger:
        return "the test ledger records no test evaluation"
    if ev.get("checkpoint_sha256") != sha256(facts.run.checkpoint("best")):
        return "the best checkpoint changed since the test evaluation"
    if result.images != facts.run.data_info.get("split_counts", {}).get("test"):
        return "the test evaluation scored a subset of the test split (a retrain.py holdout)"
    return None


def _gate(facts: Facts, result: SplitResult) -> Gate | None:
    if facts.objective is None:
        return None
    if result.split == "test":
        recorded = facts.evals["test"].get("gate")
        return (
            Gate.from_dict(recorded)
            if recorded
            else eval_gate(facts.objective, facts.evals["test"], "test")
        )
    if "gate" in facts.metrics:
        return Gate.from_dict(facts.metrics["gate"])
    return train_gate(facts.objective, facts.metrics)


def split_results(facts: Facts, predict: bool = True, resamples: int = 1000) -> list[SplitResult]:
    """Val (always) and test (when it was evaluated), with intervals where they apply."""
    results = [r for r in (_val(facts), _test(facts)) if r is not None]
    for result in results:
        result.gate = _gate(facts, result)
        facts.part.intervals(facts, result, predict, resamples)
    return results
