"""``mlcycle label-issues``: rank likely label errors of a comparison or a run.

    mlcycle label-issues runs/compare/digits [--candidate NAME] [--out DIR]
    mlcycle label-issues runs/quickstart/2024-01-01_12-00-00

From a comparison's folder it reads a candidate's out-of-fold probabilities (every train+val
item predicted by a model that did not train on it); from a run directory its val predictions.
Confident learning (cleanlab) ranks the likely label errors; embeddings, where they exist, add
near-duplicates labelled otherwise and outliers. Writes ``label_issues.csv`` and
``label_issues.html``; a relabel file made of the lines you agree with is ``data.relabel``.
See docs/data_centric.md.
"""

from __future__ import annotations

from pathlib import Path

from mlcycle.commands.guard import main_guard
from mlcycle.commands.parser import CommandParser
from mlcycle.core.errors import UserError


def parser() -> CommandParser:
    p = CommandParser(
        "label_issues",
        "Rank likely label errors from a comparison's out-of-fold probabilities or a run's val "
        "predictions; write label_issues.csv and an HTML gallery.",
    )
    p.add_argument("path", type=str, help="a comparison's folder (mlcycle compare --out) or a run directory")  # fmt: skip
    p.add_argument("--candidate", type=str | None, default=None, help="the comparison's candidate whose out-of-fold probabilities to use (default: the best that has them)")  # fmt: skip
    p.add_argument("--out", type=str | None, default=None, help="folder to write (default: PATH/label_issues)")  # fmt: skip
    p.add_argument("--gallery", type=int, default=100, help="items shown in label_issues.html (the CSV has all)")  # fmt: skip
    p.add_argument("--outlier_share", type=float, default=0.01, help="share of the items listed as outliers, the most outlying first (0: none)")  # fmt: skip
    return p


@main_guard
def main(argv: list[str] | None = None) -> Path:
    args = parser().parse(argv)
    if args.gallery < 0 or not 0 <= args.outlier_share < 1:
        raise UserError("--gallery is 0 or more and --outlier_share between 0 and 1")
    from mlcycle.selection.label_issues.find import label_issues

    return label_issues(args.path, args.candidate, args.out, args.gallery, args.outlier_share)
