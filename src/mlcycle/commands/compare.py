"""``compare.py``: cross-validate many candidate models on the same folds and rank them
(``mlcycle.selection.compare`` does the work; docs/selection.md)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

from mlcycle.commands.guard import ArgParser, main_guard
from mlcycle.core.errors import UserError


def build_parser() -> ArgParser:
    parser = ArgParser(
        prog="compare.py",
        description="Cross-validate many candidate models on the same folds and rank them. "
        "Any other --key=value (e.g. --data.root PATH, --trainer.max_epochs=2) goes to every "
        "train.py run and to the base data.",
    )
    parser.add_argument("--config", required=True, help="comparison YAML (configs/compare/*.yaml)")
    parser.add_argument("--out", help="comparison folder (default: runs/compare/<config name>)")
    parser.add_argument("--folds", type=int, help="number of folds (default: the config's, 5)")
    parser.add_argument("--only", help="comma-separated candidate names to run (others skipped)")
    return parser


@main_guard
def main(argv: list[str] | None = None) -> dict[str, Any]:
    from mlcycle.selection.compare.run import compare
    from mlcycle.selection.compare.spec import load_spec

    args, extra = build_parser().parse_passthrough(argv)
    spec = load_spec(args.config)
    if args.folds is not None:
        spec.folds = args.folds
    if spec.folds < 2:
        raise UserError(f"--folds {spec.folds}: cross-validation needs at least 2 folds")
    out = Path(args.out) if args.out else Path("runs") / "compare" / spec.path.stem
    command = shlex.join(["compare.py", *(sys.argv[1:] if argv is None else argv)])
    return compare(spec, out, extra, args.only, command)
