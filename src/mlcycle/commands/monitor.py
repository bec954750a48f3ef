"""``mlcycle monitor``: compare the prediction store with the model's reference, per window.

    mlcycle monitor --db sqlite:///serve/predictions.db --run runs/digits --window 1d

Exit code 0: no threshold crossed; 1: some window crossed one (cron and CI can alert on it);
2: bad input (unknown database, empty store, missing reference). See docs/monitoring.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlcycle.commands.guard import main_guard
from mlcycle.commands.parser import CommandParser
from mlcycle.core.errors import UserError


class ThresholdCrossed(UserError):
    """Some window crossed a threshold: exit code 1, for alerting."""

    exit_code = 1


def parser() -> CommandParser:
    p = CommandParser(
        "monitor",
        "Check served predictions for input drift, prediction drift and a performance drop "
        "against the reference written at export.",
    )
    p.add_argument("--db", type=str, required=True, help="The prediction store's SQLAlchemy URL.")
    for name, text in (
        ("run", "Run directory (its export/model.onnx is the model)."),
        ("model", "The served model (default: RUN/export/model.onnx)."),
        ("since", "ISO date or time, UTC unless an offset is given."),
        ("until", "ISO date or time (exclusive)."),
        ("window", "Window length: 30m, 1h, 6h, 1d, 7d (default: one)."),
        (
            "model_version",
            "Rows of this model version, or 'all' (default: the model file's sha256).",
        ),
        ("out", "Output folder (default: RUN/monitor)."),
        ("thresholds", "YAML mapping overriding default thresholds."),
    ):
        p.add_argument(f"--{name}", type=str | None, default=None, help=text)
    return p


@main_guard
def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parser().parse(argv)
    from mlcycle.monitor.judge import line, monitor
    from mlcycle.monitor.report import write_outputs
    from mlcycle.serve.model import run_model

    if not args.run and not args.model:
        raise UserError("pass --run DIR (or --model RUN/export/model.onnx)")
    model = Path(args.model) if args.model else run_model(Path(args.run))
    if not model.is_file():
        raise UserError(f"model '{model}' does not exist; export the run first (export.py)")
    report = monitor(
        args.db, model, args.since, args.until, args.window, args.model_version, args.thresholds
    )
    base = Path(args.run) if args.run else model.parent.parent
    out = Path(args.out) if args.out else base / "monitor"
    for window in report["windows"]:
        print(line(window))
    files = write_outputs(report, out)
    print(f"wrote {files[0]} and {files[1]}")
    crossed = [w for w in report["windows"] if w["flagged"]]
    if crossed:
        names = sorted({c["check"] for w in crossed for c in w["checks"] if c["flagged"]})
        raise ThresholdCrossed(
            f"{len(crossed)} of {len(report['windows'])} windows crossed a threshold "
            f"({', '.join(names)}); see {files[1]}"
        )
    print(f"no threshold crossed in {len(report['windows'])} window(s)")
    return report
