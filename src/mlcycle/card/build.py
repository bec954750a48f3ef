"""A self-contained HTML model card of a run, for people outside the team (``report.py``).

It reads the run directory (config, metrics, evaluations, figures, export) and writes one HTML
file with the figures inline. It never reads the test split first: test metrics appear only
when the run was evaluated on it (``eval_test.json``), and nothing is added to the ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from mlcycle.card import figures, sections
from mlcycle.card.export import export, measure_latency
from mlcycle.card.facts import load_facts, split_results
from mlcycle.card.html import Section, page, section
from mlcycle.card.limits import limitations
from mlcycle.card.slices import slices
from mlcycle.core.errors import UserError


def reproduce(run: Path) -> Section:
    commands = [
        f"python scripts/train.py --config {run / 'config.yaml'} --run_dir NEW_RUN_DIR",
        f"python scripts/evaluate.py --run {run} --split val",
        f"python scripts/export.py --run {run}",
        f"python scripts/report.py --run {run}",
    ]
    return section("reproduce", "Reproduce", commands=commands)


def build_card(
    run: str | Path,
    title: str | None = None,
    intended_use: str | None = None,
    known_limitations: Sequence[str] = (),
    resamples: int = 1000,
    predict: bool = True,
    latency: bool = True,
) -> str:
    """The card's HTML: ``predict`` recomputes per-image predictions for the intervals that
    need them (``resamples`` bootstrap resamples), ``latency`` times the exported ONNX model,
    and ``known_limitations`` follow those the run's records show."""
    facts = load_facts(run)
    results = split_results(facts, predict=predict, resamples=resamples)
    measured = measure_latency(facts) if latency else None
    parts = [
        sections.intended_use(facts, intended_use),
        sections.model(facts),
        sections.data(facts),
        sections.metrics(facts, results),
        sections.gate(facts, results, measured),
        sections.per_class(facts, results),
        slices(facts),
        figures.errors(facts),
        figures.curves(facts),
        export(facts, measured),
        section(
            "limitations",
            "Known limitations",
            found=limitations(facts, results, known_limitations),
        ),
        reproduce(facts.run.path),
    ]
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    title = title or f"Model card: {facts.run.path.name}"
    return page(title, f"{facts.task} model; run {facts.run.path}; card written {stamp}", parts)


def write_card(html: str, out: Path) -> None:
    """Write the card to ``out`` (its folder made); a place that cannot be written is a
    :class:`UserError`."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write '{out}': {exc.strerror}; pass a writable --out") from exc
