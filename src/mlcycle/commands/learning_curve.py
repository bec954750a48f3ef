"""``mlcycle learning-curve``: would more data help? One candidate of a comparison trained on
growing shares of each fold's training samples, a power law fitted to its validation error,
and the gain expected from twice the data (``mlcycle.selection.curve``; docs/data_centric.md).
Its ``--config`` is a comparison YAML (with ``--candidate NAME``); ``--train CONFIG`` alone
takes a train.py config's own model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlcycle.commands.guard import main_guard
from mlcycle.commands.parser import CommandParser
from mlcycle.core.errors import UserError
from mlcycle.selection.compare.spec import add_arguments

SIZES = [0.1, 0.25, 0.5, 1.0]


def parser() -> CommandParser:
    p = CommandParser(
        "learning-curve",
        "Train one candidate on 10/25/50/100% of each fold's training samples (nested and "
        "stratified), plot train and val metric against size, fit a power law and say what "
        "twice the data would give. --config is a comparison YAML (configs/compare/*.yaml) with "
        "--candidate NAME, or give --train CONFIG for a train.py config's own model. Any other "
        "--key=value (e.g. --trainer.max_epochs=2) goes to every train.py run.",
    )
    add_arguments(p)
    p.add_argument("--candidate", type=str | None, default=None, help="the comparison's candidate to train (default: the only one)")  # fmt: skip
    p.add_argument("--sizes", type=list[float], default=SIZES, help="shares of each fold's training samples, each in (0, 1]")  # fmt: skip
    p.add_argument("--seed", type=int | None, default=None, help="seed of the subsets (default: fold_seed)")  # fmt: skip
    p.add_argument("--out", type=str | None, default=None, help="output folder (default: runs/learning_curve/<config name>)")  # fmt: skip
    return p


@main_guard
def main(argv: list[str] | None = None) -> dict[str, Any]:
    args, extra = parser().split(argv)
    from mlcycle.selection.curve.sizes import check_sizes

    sizes = check_sizes(list(args.sizes))
    if args.config:
        path = Path(str(args.config[0]))
    elif args.train:
        path = Path(args.train if isinstance(args.train, str) else args.train[0])
        if not args.candidates:  # a train.py config: its own model is the candidate
            args.candidates = [{"name": "model"}]
    else:
        raise UserError(
            "give the comparison: --config FILE (configs/compare/*.yaml) with --candidate NAME, "
            "or a train.py config: --train FILE"
        )
    from mlcycle.selection.compare.spec import spec_of
    from mlcycle.selection.curve.run import learning_curve

    spec = spec_of(args, path)
    if spec.folds < 2:
        raise UserError(f"--folds {spec.folds}: a learning curve needs at least 2 folds")
    out = Path(args.out) if args.out else Path("runs") / "learning_curve" / path.stem
    return learning_curve(spec, args.candidate, sizes, out, extra, args.seed)
