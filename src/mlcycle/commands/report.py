"""``mlcycle report``: write a self-contained HTML model card of a run (``mlcycle.card``)."""

from __future__ import annotations

import time
from pathlib import Path

from mlcycle.commands.guard import main_guard
from mlcycle.commands.parser import CommandParser
from mlcycle.core.errors import UserError


def parser() -> CommandParser:
    p = CommandParser("report", "Write a self-contained HTML model card of a run (figures inline).")
    p.add_argument("--run", type=str, required=True, help="run directory written by train.py")
    p.add_argument("--out", type=str | None, default=None, help="HTML file to write (default: RUN/model_card.html)")  # fmt: skip
    p.add_argument("--title", type=str | None, default=None, help="the card's title (default: the run's name)")  # fmt: skip
    p.add_argument("--intended_use", type=str | None, default=None, help="what the model is for, who uses it, and how")  # fmt: skip
    p.add_repeatable("limitations", "a known limitation to add (repeatable); the card lists those its records show")  # fmt: skip
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples for the macro-F1 interval")  # fmt: skip
    p.add_argument("--no_predict", action="store_true", help="do not recompute per-image predictions (no macro-F1 interval; faster)")  # fmt: skip
    p.add_argument("--no_latency", action="store_true", help="do not time the ONNX model")
    return p


@main_guard
def main(argv: list[str] | None = None) -> Path:
    args = parser().parse(argv)
    if args.resamples < 100:
        raise UserError(f"--resamples {args.resamples}: use at least 100 for a 95% interval")
    from mlcycle.card.build import build_card, write_card

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
