"""compare.py's work: many quick models, the same folds, one leaderboard.

Every candidate is cross-validated on folds of the base data's train+val samples; the test
split is sealed (never predicted, never scored). How a task is cross-validated (its pool, its
candidate-folds, how they are scored and analysed) is its kind of comparison's
(:mod:`mlcycle.selection.compare.kinds`). A finished candidate-fold is kept: re-running the same
command resumes. With ``--time_limit`` (:mod:`mlcycle.selection.compare.budget`) or Ctrl-C, the
candidate-folds not run are skipped: the leaderboard ranks the candidates whose folds all
finished and lists the others with the reason.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from mlcycle.core.errors import UserError
from mlcycle.core.record import Stopwatch, write_json
from mlcycle.evaluators.slice_run import slice_names
from mlcycle.reports import figure_worker
from mlcycle.selection.compare.budget import Budget
from mlcycle.selection.compare.comparison import FOLD_RESULT, Comparison, base_arguments
from mlcycle.selection.compare.final import export_final, export_reserve
from mlcycle.selection.compare.kinds import comparison_kind
from mlcycle.selection.compare.report import write_report
from mlcycle.selection.compare.spec import Candidate, CompareSpec, add_preset
from mlcycle.selection.compare.summary import summarize
from mlcycle.selection.config import resolve_config
from mlcycle.selection.executors import Executor, open_executor, worker_id


def open_comparison(spec: CompareSpec, out: Path, extra: list[str]) -> Comparison:
    """The comparison of the base config's task, by its kind."""
    config = resolve_config(base_arguments(spec, extra))
    return comparison_kind(config)(spec, out, extra, config)


def order(candidates: list[Candidate]) -> list[Candidate]:
    """Classic candidates of their own features first (the quick ones: under ``--time_limit``
    they finish before a deep one spends the budget), then the deep ones, then the classic
    ones on a deep candidate's embeddings; each group in the YAML's (or preset's) order."""
    deep = [c for c in candidates if c.kind == "deep"]
    on_deep = [c for c in candidates if c.kind != "deep" and c.embeddings_of]
    own = [c for c in candidates if c.kind != "deep" and not c.embeddings_of]
    return own + deep + on_deep


class FoldJobs:
    """The candidate-folds as an executor's jobs, ``(candidate, fold)``
    (:mod:`mlcycle.selection.executors`): kept, skipped, or run (here or on a Ray worker)."""

    def __init__(self, comparison: Comparison, embedded: set, budget: Budget) -> None:
        self.comparison, self.embedded, self.budget = comparison, embedded, budget

    def settle(self, job: tuple[Candidate, int]) -> dict[str, Any] | None:
        """The record kept from an earlier run, or skipped (why); None: it runs."""
        candidate, fold = job
        if self.comparison.fold_done(candidate, fold):
            return self.comparison.load_fold(candidate, fold)
        reason = self.budget.skip_reason(candidate.name, fold)
        return self.skip(job, reason) if reason else None

    def fit(self, job: tuple[Candidate, int]) -> dict[str, Any]:
        candidate, fold = job
        comparison, budget = self.comparison, self.budget
        folder = comparison.fold_dir(candidate, fold)
        folder.mkdir(parents=True, exist_ok=True)  # who runs it: named if its process dies
        write_json(folder / FOLD_RESULT, {"status": "running", "fold": fold, "worker": worker_id()})
        began = time.monotonic()
        # under a time limit the fold runs draw no figures (a third of a small table's fit)
        quick = figure_worker.skipped() if budget.seconds else contextlib.nullcontext()
        try:
            with quick:
                record = comparison.run_one(candidate, fold, candidate.name in self.embedded)
        except KeyboardInterrupt:  # every later fold is skipped too; the finished ones are ranked
            budget.stopped = "interrupted (Ctrl-C)"
            tqdm.write("interrupted: ranking the candidates that finished", file=sys.stderr)
            return self.skip(job, budget.stopped)
        budget.ran(candidate.name, time.monotonic() - began)
        if record["status"] == "finished":
            record = comparison.load_fold(candidate, fold)
        return record

    def failed(self, job: tuple[Candidate, int], error: str) -> dict[str, Any]:
        """A fold whose Ray worker died: failed in the leaderboard and its folder, naming the
        worker (host:pid) it was running on."""
        candidate, fold = job
        folder = self.comparison.fold_dir(candidate, fold)
        folder.mkdir(parents=True, exist_ok=True)
        started = folder / FOLD_RESULT
        worker = json.loads(started.read_text()).get("worker") if started.is_file() else None
        if worker:
            error = f"{error} (it ran on {worker})"
        record = {"status": "failed", "fold": fold, "error": error, "worker": worker}
        write_json(folder / FOLD_RESULT, record)
        return record

    def skip(self, job: tuple[Candidate, int], why: str) -> dict[str, Any]:
        return {"status": "skipped", "fold": job[1], "error": why}


def run_fold(
    comparison: Comparison, candidate: Candidate, fold: int, embedded: set, budget: Budget
) -> dict[str, Any]:
    """The candidate-fold's record: kept from an earlier run, run now, or skipped (why)."""
    jobs = FoldJobs(comparison, embedded, budget)
    record = jobs.settle((candidate, fold))
    return jobs.fit((candidate, fold)) if record is None else record


def run_all(
    comparison: Comparison, candidates: list[Candidate], budget: Budget, executor: Executor
) -> dict[str, list[dict]]:
    """Every candidate-fold through ``executor``: those on a deep candidate's embeddings after
    the others (they need its fold networks)."""
    spec = comparison.spec
    embedded = {c.embeddings_of for c in spec.candidates if c.embeddings_of}
    jobs = FoldJobs(comparison, embedded, budget)
    ordered = order(candidates)
    waves = [[c for c in ordered if not c.embeddings_of], [c for c in ordered if c.embeddings_of]]
    fits = None if budget.seconds is None else budget.start + budget.seconds - budget.reserve
    results: dict[str, list[dict]] = {c.name: [] for c in candidates}
    bar = tqdm(total=len(candidates) * spec.folds, desc="candidates x folds", unit="fit",
               file=sys.stderr, dynamic_ncols=True)  # fmt: skip
    for wave in waves:
        folds = [(c, f) for c in wave for f in range(spec.folds)]
        for (candidate, fold), record in executor.map(folds, jobs, fits):
            bar.update()
            bar.set_postfix_str(f"{candidate.name} fold {fold}")
            results[candidate.name].append(record)
            if record["status"] == "skipped":
                continue
            if record["status"] != "finished":
                tqdm.write(f"{candidate.name} fold {fold} failed: {record['error']}", file=sys.stderr)  # fmt: skip
            if len(results[candidate.name]) == spec.folds:  # in fold order, as they finished
                results[candidate.name].sort(key=lambda r: r["fold"])
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


def skipped_of(candidates: list[Candidate], results: dict[str, list[dict]]) -> list[dict[str, Any]]:
    """Each candidate with a skipped fold: its folds kept, those skipped and why."""
    found = []
    for c in candidates:
        skipped = [r for r in results[c.name] if r["status"] == "skipped"]
        if skipped:
            kept = [r["fold"] for r in results[c.name] if r["status"] == "finished"]
            folds = [r["fold"] for r in skipped]
            found.append({"candidate": c.name, "folds_kept": kept, "folds_skipped": folds,
                          "reason": skipped[0]["error"]})  # fmt: skip
    return found


def compare(
    spec: CompareSpec,
    out: Path,
    extra: list[str],
    only: str | None,
    command: str,
    started: float | None = None,
) -> dict[str, Any]:
    """Cross-validate the candidates (``only`` those named), write the report; its summary.
    ``started``: the ``time.monotonic()`` the command started at, where ``--time_limit``
    counts from (default now)."""
    clock = Stopwatch()
    after = export_reserve(spec.time_limit) if spec.export and spec.time_limit else 0.0
    budget = Budget(spec.time_limit, spec.folds, started, after)
    with open_executor(spec.executor) as executor:  # an unreachable --address fails first
        comparison = open_comparison(spec, out, extra)
        slice_names(comparison.data, spec.slices)  # an unknown slice column stops before fits
        deadline = budget.deadline()
        comparison.deadline = None if deadline is None else deadline - after
        add_preset(spec, comparison.presets, comparison.unit)
        comparison.prepare()
        candidates = pick(spec, only)
        print(comparison.opening_line(candidates))
        if executor.kind != "local":
            print(f"candidate-folds run as {executor.describe()}")
        results = run_all(comparison, candidates, budget, executor)
    skipped = skipped_of(candidates, results)
    for item in skipped:
        print(f"skipped {item['candidate']} fold(s) {item['folds_skipped']}: {item['reason']}")
    ranked = [c for c in candidates if c.name not in {s["candidate"] for s in skipped}]
    if not ranked:
        raise UserError(
            f"no candidate finished its {spec.folds} folds ({skipped[0]['reason']}); the folds "
            "that finished are kept: rerun with a larger --time_limit to resume"
        )
    summary = write_report(comparison, ranked, results, command, clock, skipped)
    if spec.export:
        summary["final"] = export_final(out, command)
    return summary
