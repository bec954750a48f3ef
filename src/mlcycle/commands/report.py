"""``report.py``: write a self-contained HTML model card of a run (``mlcycle.card``)."""

from __future__ import annotations

import time
from pathlib import Path

from mlcycle.card.build import build_card, write_card
from mlcycle.commands.guard import ArgParser, main_guard
from mlcycle.core.errors import UserError


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


@main_guard
def main(argv: list[str] | None = None) -> Path:
    args = build_parser().parse_args(argv)
    if args.resamples < 100:
        raise UserError(f"--resamples {args.resamples}: use at least 100 for a 95% interval")
    clock = time.perf_counter()
    html = build_card(
        args.run,
        title=args.title,
        intended_use=args.intended_use,
        known_limitations=args.limitations,
        resamples=args.resamples,
        predict=not args.no_predict,
        latency=not args.no_latency,
    )
    out = Path(args.out) if args.out else Path(args.run) / "model_card.html"
    write_card(html, out)
    print(f"wrote {out} ({len(html) / 1e6:.1f} MB, {time.perf_counter() - clock:.1f}s)")
    return out
