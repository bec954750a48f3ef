"""What an ensemble of image classifiers records: the table of methods it prints, its
``metrics.json`` (with the objective's gate) and ``ensemble.json``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from mlcycle.core.objective import train_gate
from mlcycle.core.record import library_versions, write_json
from mlcycle.images.selection.ensemble_members import Source
from mlcycle.selection.ensemble.methods import Outcome, brief


@dataclass
class Fitted:
    """The held-out predictions the combination was fit on, and every method's outcome."""

    probs: np.ndarray  # (M, N, C)
    target: np.ndarray
    folds: np.ndarray
    outcomes: list[Outcome]
    chosen: Outcome
    singles: list[dict[str, Any]]  # each member's scores on the same predictions
    best: int  # the best single member


def scored_on(source: Source, outcome: Outcome, rows: int, folds: int) -> str:
    if source.kind == "shortlist":
        text = (
            f"out-of-fold predictions of comparison '{source.comparison}' ({rows} train+val "
            f"images, {folds} folds: each image predicted by the fold model that did not train "
            "on it)"
        )
        if outcome.cross_fitted:
            text += f"; the {outcome.method} combination cross-fitted over the same folds"
        return text + (
            "; evaluate.py --split val is optimistic on this run (the bag's other fold models "
            "trained on fold 0)"
        )
    text = f"val split ({rows} images) of '{source.split_file}'"
    if outcome.cross_fitted:
        text += (
            f"; the {outcome.method} combination cross-fitted over {folds} folds of val; the "
            "final one is fit on all of val, so evaluate.py --split val scores it in-sample"
        )
    return text


def metrics_record(outcome: Outcome, source: Source, text: str) -> dict[str, Any]:
    scores = outcome.scores
    record: dict[str, Any] = {"status": "finished", "monitor": "val/f1", "best_epoch": None}
    for key in ("f1", "acc", "precision", "recall", "loss", "error"):
        record[f"val/{key}"] = scores[key]
    for name, value in zip(source.class_names, scores["f1_per_class"], strict=True):
        record[f"val/f1/{name}"] = value
    record["scored_on"] = text
    record["ensemble"] = {"method": outcome.method, "members": [m.name for m in source.members]}
    return record


def members_record(source: Source, outcome: Outcome, singles: list[dict]) -> list[dict]:
    weights = outcome.combination.weights
    return [
        {
            "name": member.name,
            "family": "deep",
            "networks": [n.record() for n in member.networks],
            "weight": weights[i] if weights else None,
            "scores": brief(singles[i]),
        }
        for i, member in enumerate(source.members)
    ]


def print_table(source: Source, fitted: Fitted) -> None:
    """Every method's held-out macro F1 and log loss under the best single member's."""
    where = "out-of-fold" if source.kind == "shortlist" else "val"
    bags = ", ".join(
        f"{m.name} ({len(m.networks)} fold models)" if len(m.networks) > 1 else m.name
        for m in source.members
    )
    rows, best = len(fitted.target), fitted.best
    print(f"ensemble of {len(source.members)} member(s) on {rows} {where} images: {bags}")
    for item in source.left_out:
        print(f"left out: {item['name']} ({item['reason']})")
    label = f"best single: {source.members[best].name}"
    width = max(len(label), 24)
    single = fitted.singles[best]
    print(f"{'':<{width}}  {'macro F1':>8}  {'log loss':>8}")
    print(f"{label:<{width}}  {single['f1']:8.4f}  {single['loss']:8.4f}")
    for o in fitted.outcomes:
        name = f"{o.method} (cross-fitted)" if o.cross_fitted else o.method
        line = f"{name:<{width}}  {o.scores['f1']:8.4f}  {o.scores['loss']:8.4f}"
        if o.method == "weighted":
            names = [m.name for m in source.members]
            pairs = zip(names, o.combination.weights or [], strict=True)
            line += "  weights " + ", ".join(f"{n} {w:.3f}" for n, w in pairs)
        print(line)


def write_metrics(out: Path, source: Source, fitted: Fitted, measured: dict, text: str) -> dict:
    record = metrics_record(fitted.chosen, source, text)
    record.update(measured)
    if source.objective is not None:
        gate = train_gate(
            source.objective,
            record,
            latency_ms=measured["latency_ms"],
            size_mb=measured["size_mb"],
        )
        record.update(objective=source.objective.to_dict(), gate=gate.to_dict())
    record["versions"] = library_versions()
    write_json(out / "metrics.json", record)
    return record


def ensemble_record(source: Source, fitted: Fitted, asked: str, text: str) -> dict[str, Any]:
    chosen, best = fitted.chosen, fitted.best
    return {
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": source.kind,
        "comparison": str(source.comparison) if source.comparison else None,
        "method": chosen.method,
        "method_asked": asked,
        "combination": chosen.combination.to_dict(),
        "scored_on": text,
        "images": len(fitted.target),
        "members": members_record(source, chosen, fitted.singles),
        "left_out": source.left_out,
        "best_single": {"name": source.members[best].name, "scores": brief(fitted.singles[best])},
        "methods": {
            o.method: {
                "combination": o.combination.to_dict(),
                "scores": brief(o.scores),
                "cross_fitted": o.cross_fitted,
                "scores_in_sample": brief(o.in_sample),
            }
            for o in fitted.outcomes
        },
    }
