"""``retrain.py``: champion and challenger (:mod:`mlcycle.retrain` does the work).

Train a challenger on the updated data (or take a trained run), score champion and challenger
on the same fresh holdout, promote the challenger only when it passes the objective gate and
beats the champion by the margin; every version, decision and rollback goes into the registry.
Exit codes: 0 promoted (or registered, rolled back), 3 kept the champion, 2 bad input.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

from mlcycle.commands.guard import main_guard
from mlcycle.commands.parser import CommandParser
from mlcycle.core.errors import UserError

DEFAULT_REGISTRY = "runs/registry.json"


def parser() -> CommandParser:
    # --config is the challenger's train.py config here (as train.py's), not a file of these keys
    p = CommandParser(
        "retrain",
        "Train a challenger, score it against the champion on the same fresh holdout, promote "
        "it only when it passes the objective and beats the champion by the margin. Any other "
        "--key=value (e.g. --data.root NEW) goes to train.py. Exit codes: 0 promoted, 3 kept "
        "the champion, 2 bad input.",
        config=False,
    )
    p.add_argument("--champion", type=str | None, default=None, help="the champion's run directory: needed once, the first call registers it")  # fmt: skip
    p.add_repeatable("config", "train.py config of the challenger (repeatable)")
    p.add_argument("--challenger", type=str | None, default=None, help="an already trained run instead of --config")  # fmt: skip
    p.add_argument("--warm_start", action="store_true", help="start the challenger from the champion's best weights (and normalization)")  # fmt: skip
    p.add_argument("--margin", type=float, default=0.005, help="how much better the challenger must be")  # fmt: skip
    p.add_argument("--registry", type=str, default=DEFAULT_REGISTRY, help="the registry: a JSON file, or a database URL (sqlite:///runs/registry.db, postgresql+psycopg://user@host/db) shared by several machines")  # fmt: skip
    p.add_argument("--pointer", type=str | None, default=None, help="the champion pointer the server watches (default: 'champion' next to the registry file, SQLite included; runs/champion for a database server)")  # fmt: skip
    p.add_argument("--holdout", type=str | None, default=None, help="an image folder (same layout as data.root) or a split file (path,...,split; its test rows); default: the challenger's test split")  # fmt: skip
    p.add_argument("--rollback", action="store_true", help="restore the previous champion")
    p.add_argument("--reason", type=str, default="--rollback", help="why, for the rollback event")  # fmt: skip
    p.add_argument("--list", action="store_true", help="print the registry's versions")
    return p


def _check(args: Any, extra: list[str]) -> None:
    """Refuse option combinations that cannot work, before anything runs."""
    if args.rollback or args.list:
        used = [n for n in ("champion", "config", "challenger", "holdout") if getattr(args, n)]
        if used or extra or args.warm_start:
            flag = "--rollback" if args.rollback else "--list"
            raise UserError(
                f"{flag} takes only --registry, --pointer and --reason; it trains and scores "
                "nothing"
            )
        return
    if args.config and args.challenger:
        raise UserError(
            "give --config (train a challenger) or --challenger (a trained run), not both"
        )
    if extra and not args.config:
        raise UserError(f"unknown option(s) {' '.join(extra)}; train.py options need --config")
    if args.warm_start and not args.config:
        raise UserError("--warm-start starts a training run: it needs --config")
    if not args.margin >= 0:
        raise UserError(f"--margin {args.margin} must be 0 or more")


def _inputs(args: Any) -> Any:
    """Check the given paths before the registry or a run is written; the ``--challenger``."""
    from mlcycle.run.loader import Run

    if args.champion:
        Run(args.champion).checkpoint("best")
    if args.holdout and not Path(args.holdout).exists():
        raise UserError(
            f"--holdout '{args.holdout}' does not exist; give an image folder or a split file"
        )
    if not args.challenger:
        return None
    challenger = Run(args.challenger)
    challenger.checkpoint("best")
    return challenger


@main_guard
def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    args, extra = parser().split(argv)
    _check(args, extra)
    from mlcycle.retrain.challenger import train_challenger
    from mlcycle.retrain.champion import champion_of, rollback
    from mlcycle.retrain.compete import compete
    from mlcycle.retrain.registry import command_lock, describe, open_registry
    from mlcycle.run.loader import Run

    command = shlex.join(["retrain.py", *(sys.argv[1:] if argv is None else argv)])
    with command_lock(args.registry):
        registry = open_registry(args.registry, args.pointer)
        if args.list:
            print("\n".join(describe(registry)))
            return None
        if args.rollback:
            return rollback(registry, args.reason)
        challenger = _inputs(args)
        champ = champion_of(registry, args.champion)
        if not (args.config or args.challenger):
            return {"version": champ[0], "registry": registry.path}
        if challenger is None:
            challenger = Run(train_challenger(args.config, extra, champ[1], args.warm_start))
        return compete(registry, champ, challenger, args, command)
