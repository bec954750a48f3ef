"""compare.py's work: many quick models, the same folds, one leaderboard.

Every candidate is cross-validated on folds of the base data's train+val samples; the test
split is sealed (never predicted, never scored). How a task is cross-validated (its pool, its
candidate-folds, how they are scored and analysed) is its kind of comparison's
(:mod:`mlcycle.selection.compare.kinds`). A finished candidate-fold is kept: re-running the same
command resumes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from mlcycle.core.errors import UserError
from mlcycle.core.record import Stopwatch
from mlcycle.selection.compare.comparison import Comparison, base_arguments
from mlcycle.selection.compare.kinds import comparison_kind
from mlcycle.selection.compare.report import write_report
from mlcycle.selection.compare.spec import Candidate, CompareSpec
from mlcycle.selection.compare.summary import summarize
from mlcycle.selection.config import resolve_config


def open_comparison(spec: CompareSpec, out: Path, extra: list[str]) -> Comparison:
    """The comparison of the base config's task, by its kind."""
    config = resolve_config(base_arguments(spec, extra))
    return comparison_kind(config)(spec, out, extra, config)


def order(candidates: list[Candidate]) -> list[Candidate]:
    """Deep candidates first: classic ones may use their embeddings."""
    return [c for c in candidates if c.kind == "deep"] + [c for c in candidates if c.kind != "deep"]


def run_all(comparison: Comparison, candidates: list[Candidate]) -> dict[str, list[dict]]:
    spec = comparison.spec
    embedded = {c.embeddings_of for c in spec.candidates if c.embeddings_of}
    tasks = [(c, f) for c in order(candidates) for f in range(spec.folds)]
    results: dict[str, list[dict]] = {c.name: [] for c in candidates}
    bar = tqdm(tasks, desc="candidates x folds", unit="fit", file=sys.stderr, dynamic_ncols=True)
    for candidate, fold in bar:
        bar.set_postfix_str(f"{candidate.name} fold {fold}")
        if comparison.fold_done(candidate, fold):
            record = comparison.load_fold(candidate, fold)
        else:
            record = comparison.run_one(candidate, fold, candidate.name in embedded)
            if record["status"] == "finished":
                record = comparison.load_fold(candidate, fold)
        results[candidate.name].append(record)
        if record["status"] != "finished":
            tqdm.write(f"{candidate.name} fold {fold} failed: {record['error']}", file=sys.stderr)
        if fold == spec.folds - 1:
            row = summarize(candidate, results[candidate.name], comparison)
            tqdm.write(row["line"], file=sys.stderr)
    bar.close()
    return results


def pick(spec: CompareSpec, only: str | None) -> list[Candidate]:
    if not only:
        return spec.candidates
    names = [n.strip() for n in only.split(",") if n.strip()]
    known = {c.name for c in spec.candidates}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UserError(
            f"--only: no candidate '{unknown[0]}' in {spec.path}; candidates: {', '.join(sorted(known))}"
        )
    return [c for c in spec.candidates if c.name in names]


def compare(
    spec: CompareSpec, out: Path, extra: list[str], only: str | None, command: str
) -> dict[str, Any]:
    """Cross-validate the candidates (``only`` those named), write the report; its summary."""
    clock = Stopwatch()
    comparison = open_comparison(spec, out, extra)
    comparison.prepare()
    candidates = pick(spec, only)
    print(comparison.opening_line(candidates))
    results = run_all(comparison, candidates)
    return write_report(comparison, candidates, results, command, clock)
