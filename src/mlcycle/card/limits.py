"""Known limitations, listed from the run's own records (plus what the author adds)."""

from __future__ import annotations

from collections.abc import Sequence

from mlcycle.card.facts import Facts, SplitResult
from mlcycle.quality.findings import Thresholds

SMALL_EVAL = 100  # fewer images than this: intervals of several points


def _small_classes(facts: Facts) -> list[str]:
    counts = facts.run.data_info.get("train_class_counts") or {}
    limit = Thresholds().min_per_class
    small = [f"'{name}' ({n})" for name, n in counts.items() if n < limit]
    if not small:
        return []
    return [
        f"Few training images (under {limit}) for class {', '.join(small)}: expect unstable results on them."
    ]


def _below_minimum(facts: Facts, results: Sequence[SplitResult]) -> list[str]:
    objective = facts.objective
    if objective is None or objective.per_class_min is None:
        return []
    key, limit, lines = objective.per_class_name, objective.per_class_min, []
    for r in results:
        low = [
            f"'{n}' {row[key]:.4f}"
            for n, row in (r.per_class or {}).items()
            if isinstance(row.get(key), float) and row[key] < limit
        ]
        if low:
            lines.append(
                f"Below the per-class minimum {limit:g} ({key}) on {r.split}: {', '.join(low)}."
            )
    return lines


def _gates(facts: Facts, results: Sequence[SplitResult]) -> list[str]:
    lines = [
        f"The objective fails on {r.split}: {r.gate.line()}."
        for r in results
        if r.gate and not r.gate.passed
    ]
    exported = (facts.model_json or {}).get("gate")
    if exported and not exported["passed"]:
        lines.append(f"The objective fails on the export: {exported['line']}.")
    return lines


def _evaluation(facts: Facts, results: Sequence[SplitResult]) -> list[str]:
    lines = []
    if "test" not in facts.evals:
        lines.append(
            "No test evaluation yet: every number here is a validation number, and "
            "the checkpoint was chosen on that split (optimistic)."
        )
    elif len(facts.ledger) > 1:
        lines.append(
            f"The test split was evaluated {len(facts.ledger)} times (test_ledger.jsonl); "
            "if choices were made on it, its score is optimistic."
        )
    for r in results:
        if r.images is not None and r.images < SMALL_EVAL:
            lines.append(
                f"The {r.split} split has only {r.images} images: its metrics are uncertain (see the intervals)."
            )
    return lines


def _run(facts: Facts) -> list[str]:
    m, lines = facts.metrics, []
    if m.get("status") not in (None, "finished"):
        lines.append(f"Training did not finish (status {m.get('status')}).")
    if m.get("learned") is False:
        lines.append("The model is at or below chance level on validation.")
    for f in m.get("diagnosis") or []:
        if f.get("kind") != "learning":
            step = f"; next step: {f['next_step']}" if f.get("next_step") else ""
            lines.append(f"Diagnosis {f['kind']} (epoch {f.get('epoch')}): {f['message']}{step}.")
    if facts.skipped:
        lines.append(
            f"{len(facts.skipped)} file(s) of the data could not be used (skipped_files.csv); "
            "images like them are not represented."
        )
    if facts.verification and not facts.verification.get("passed"):
        lines.append(
            "The exported model failed its verification against PyTorch (export/verification.json)."
        )
    return lines


def limitations(facts: Facts, results: Sequence[SplitResult], extra: Sequence[str]) -> list[str]:
    """Every limitation the records show, then the author's own (``--limitations``)."""
    return [
        *_small_classes(facts),
        *_below_minimum(facts, results),
        *_gates(facts, results),
        *_evaluation(facts, results),
        *_run(facts),
        *extra,
    ]
