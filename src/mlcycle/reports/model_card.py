"""``scripts/report.py``: a self-contained HTML model card of a run, for people outside the team.

It reads the run directory (config, metrics, evaluations, figures, export) and writes one HTML
file with the figures inline. It never reads the test split first: test metrics appear only
when the run was evaluated on it (``eval_test.json``), and nothing is added to the ledger.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlcycle.commands.guard import ArgParser, main_guard
from mlcycle.core.errors import UserError
from mlcycle.reports import card_sections as sections
from mlcycle.reports.card_export import export, measure_latency
from mlcycle.reports.card_facts import load_facts, split_results
from mlcycle.reports.card_figures import figures
from mlcycle.reports.card_html import bullets, esc, page
from mlcycle.reports.card_limits import limitations


def build_parser() -> ArgParser:
    parser = ArgParser(
        prog="report.py",
        description="Write a self-contained HTML model card of a run (figures inline).",
    )
    parser.add_argument("--run", required=True, help="run directory written by train.py")
    parser.add_argument("--out", help="HTML file to write (default: RUN/model_card.html)")
    parser.add_argument("--title", help="the card's title (default: the run's name)")
    parser.add_argument("--intended-use", help="what the model is for, who uses it, and how")
    parser.add_argument(
        "--limitations",
        action="append",
        default=[],
        help="a known limitation to add (repeatable); the card lists those its records show",
    )
    parser.add_argument(
        "--resamples", type=int, default=1000, help="bootstrap resamples for the macro-F1 interval"
    )
    parser.add_argument(
        "--no-predict",
        action="store_true",
        help="do not recompute per-image predictions (no macro-F1 interval; faster)",
    )
    parser.add_argument("--no-latency", action="store_true", help="do not time the ONNX model")
    return parser


def reproduce(run: Path) -> tuple[str, str, str]:
    commands = [
        f"python scripts/train.py --config {run / 'config.yaml'} --run_dir NEW_RUN_DIR",
        f"python scripts/evaluate.py --run {run} --split val",
        f"python scripts/export.py --run {run}",
        f"python scripts/report.py --run {run}",
    ]
    body = "<p>From the repository, with the same data:</p>" + bullets(
        [f"<code>{esc(c)}</code>" for c in commands], markup=True
    )
    return ("reproduce", "Reproduce", body)


def limits_html(found: list[str]) -> str:
    if found:
        return bullets(found)
    return "<p>None found in the run's records. Add what you know with --limitations TEXT.</p>"


def build_card(args: Any) -> str:
    """The card's HTML for the parsed ``args``."""
    facts = load_facts(args.run)
    results = split_results(facts, predict=not args.no_predict, resamples=args.resamples)
    latency = None if args.no_latency else measure_latency(facts)
    found = limitations(facts, results, args.limitations)
    parts = [
        sections.intended_use(facts, args.intended_use),
        sections.model(facts),
        sections.data(facts),
        sections.metrics(facts, results),
        sections.gate(facts, results, latency),
        sections.per_class(facts, results),
        figures(facts, "errors"),
        figures(facts, "curves"),
        export(facts, latency),
        ("limitations", "Known limitations", limits_html(found)),
        reproduce(facts.run.path),
    ]
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    title = args.title or f"Model card: {facts.run.path.name}"
    return page(title, f"{facts.task} model; run {facts.run.path}; card written {stamp}", parts)


@main_guard
def main(argv: list[str] | None = None) -> Path:
    args = build_parser().parse_args(argv)
    if args.resamples < 100:
        raise UserError(f"--resamples {args.resamples}: use at least 100 for a 95% interval")
    clock = time.perf_counter()
    html = build_card(args)
    out = Path(args.out) if args.out else Path(args.run) / "model_card.html"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write '{out}': {exc.strerror}; pass a writable --out") from exc
    print(f"wrote {out} ({len(html) / 1e6:.1f} MB, {time.perf_counter() - clock:.1f}s)")
    return out
