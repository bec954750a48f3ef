"""``ensemble.py``: combine trained runs into one run directory.

    python scripts/ensemble.py --runs RUN_A RUN_B [RUN_C ...] [--method soft|weighted|stacking|all]
    python scripts/ensemble.py --shortlist runs/compare/digits/shortlist.yaml --method all

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

from mlcycle.commands.guard import ArgParser, main_guard
from mlcycle.selection.ensemble.combine import METHODS


def build_parser() -> ArgParser:
    parser = ArgParser(
        prog="ensemble.py",
        description="Combine trained classification runs (or a comparison's shortlist) into one "
        "run directory that evaluate.py, export.py and predict.py use like any other.",
    )
    given = parser.add_mutually_exclusive_group(required=True)
    given.add_argument(
        "--runs", nargs="+", help="run directories trained on the same split (image or table runs)"
    )
    given.add_argument("--shortlist", help="shortlist.yaml written by compare.py")
    parser.add_argument(
        "--method",
        choices=(*METHODS, "all"),
        default="soft",
        help="soft voting (default), weighted (log-loss weights), stacking (logistic "
        "regression), or all: the best of the three on held-out predictions",
    )
    parser.add_argument("--out", help="the ensemble's run directory (default runs/ensemble/<time>)")
    return parser


@main_guard
def main(argv: list[str] | None = None) -> Path:
    from mlcycle.selection.ensemble.kinds import Request, ensemble

    args = build_parser().parse_args(argv)
    command = shlex.join(["ensemble.py", *(sys.argv[1:] if argv is None else argv)])
    shortlist = Path(args.shortlist) if args.shortlist else None
    return ensemble(Request(args.runs, shortlist, args.method, args.out, command))
