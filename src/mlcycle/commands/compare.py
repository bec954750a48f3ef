"""``mlcycle compare``: cross-validate many candidate models on the same folds and rank them
(``mlcycle.selection.compare`` does the work; docs/selection.md). The comparison YAML is this
command's ``--config``: its keys are options too (``--folds 3``)."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import Any

from mlcycle.commands.guard import main_guard
from mlcycle.commands.parser import CommandParser
from mlcycle.core.errors import UserError
from mlcycle.selection.compare.spec import add_arguments

STARTED = time.monotonic()  # --time_limit counts the command's imports too


def parser() -> CommandParser:
    p = CommandParser(
        "compare",
        "Cross-validate many candidate models on the same folds and rank them. --config is the "
        "comparison YAML (configs/compare/*.yaml). Any other --key=value (e.g. --data.root PATH, "
        "--trainer.max_epochs=2) goes to every train.py run and to the base data.",
    )
    add_arguments(p)
    p.add_argument("--out", type=str | None, default=None, help="comparison folder (default: runs/compare/<config name>)")  # fmt: skip
    p.add_argument("--only", type=str | None, default=None, help="comma-separated candidate names to run (others skipped)")  # fmt: skip
    return p


@main_guard
def main(argv: list[str] | None = None) -> dict[str, Any]:
    args, extra = parser().split(argv)
    if not args.config:
        raise UserError("give the comparison: --config FILE (configs/compare/*.yaml)")
    from mlcycle.selection.compare.run import compare
    from mlcycle.selection.compare.spec import spec_of

    spec = spec_of(args, Path(str(args.config[0])))
    if spec.folds < 2:
        raise UserError(f"--folds {spec.folds}: cross-validation needs at least 2 folds")
    out = Path(args.out) if args.out else Path("runs") / "compare" / spec.path.stem
    command = shlex.join(["compare.py", *(sys.argv[1:] if argv is None else argv)])
    started = STARTED if argv is None else None  # called in-process: from now
    return compare(spec, out, extra, args.only, command, started)
