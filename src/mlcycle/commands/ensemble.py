"""``mlcycle ensemble``: combine trained runs into one run directory.

    mlcycle ensemble --runs RUN_A RUN_B [RUN_C ...] [--method soft|weighted|stacking|all]
    mlcycle ensemble --shortlist runs/compare/digits/shortlist.yaml --method all

The result is an ordinary run directory (``config.yaml``, ``checkpoints/best.ckpt``,
``metrics.json``, ``data.json``, ``splits.csv``) plus ``ensemble.json``: evaluate.py scores it,
export.py writes it as one ONNX graph and predict.py runs it, all unchanged. The combination is
fit on held-out predictions only: the members' val predictions (``--runs``) or the comparison's
out-of-fold ones (``--shortlist``); the test split is never predicted here. How the members'
task is ensembled is its kind's (``mlcycle.selection.ensemble.kinds``). See docs/ensemble.md.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Literal

from mlcycle.commands.guard import main_guard
from mlcycle.commands.parser import CommandParser
from mlcycle.core.errors import UserError
from mlcycle.selection.ensemble.combine import METHODS


def parser() -> CommandParser:
    p = CommandParser(
        "ensemble",
        "Combine trained classification runs (or a comparison's shortlist) into one run "
        "directory that mlcycle evaluate, export and predict use like any other.",
    )
    p.add_argument("--runs", type=str, nargs="+", help="run directories trained on the same split (image or table runs)")  # fmt: skip
    p.add_argument("--shortlist", type=Path | None, default=None, help="shortlist.yaml written by mlcycle compare")  # fmt: skip
    p.add_argument(
        "--method",
        type=Literal[(*METHODS, "all")],
        default="soft",
        help="soft voting (default), weighted (log-loss weights), stacking (logistic "
        "regression), or all: the best of the three on held-out predictions",
    )
    p.add_argument("--out", type=str | None, default=None, help="the ensemble's run directory (default runs/ensemble/<time>)")  # fmt: skip
    return p


@main_guard
def main(argv: list[str] | None = None) -> Path:
    args = parser().parse(argv)
    if bool(args.runs) == bool(args.shortlist):
        raise UserError("give --runs RUN_A RUN_B ... or --shortlist FILE (one of the two)")
    from mlcycle.selection.ensemble.kinds import Request, ensemble

    command = shlex.join(["ensemble.py", *(sys.argv[1:] if argv is None else argv)])
    return ensemble(Request(args.runs, args.shortlist, args.method, args.out, command))
