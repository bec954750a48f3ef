"""``mlcycle tune``: search hyperparameters with Optuna over train.py runs
(``mlcycle.selection.tune`` does the work; docs/tune.md). The tune YAML is this command's
``--config``: its keys are options too (``--trials 5``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlcycle.commands.guard import main_guard
from mlcycle.commands.parser import CommandParser
from mlcycle.core.errors import UserError
from mlcycle.selection.tune.spec import add_arguments


def parser() -> CommandParser:
    p = CommandParser(
        "tune",
        "Search hyperparameters with Optuna (TPE and a median pruner) over train.py runs. "
        "--config is the tune YAML (configs/tune/*.yaml). Any other --key=value (e.g. "
        "--data.root PATH) goes to every train.py run.",
    )
    add_arguments(p)
    p.add_argument("--out", type=str | None, default=None, help="study folder (default: runs/tune/<study>)")  # fmt: skip
    p.add_argument("--study", type=str | None, default=None, help="study name (default: the YAML file's name)")  # fmt: skip
    p.add_argument("--storage", type=str | None, default=None, help="SQLAlchemy URL shared by the workers (default: sqlite:///<out>/study.db)")  # fmt: skip
    p.add_argument("--timeout", type=float | None, default=None, help="stop starting trials after this many seconds")  # fmt: skip
    p.add_argument("--heartbeat", type=int, default=30, help="seconds between a running trial's heartbeats; a trial silent for 4x this long is failed by the next worker")  # fmt: skip
    return p


@main_guard
def main(argv: list[str] | None = None) -> dict[str, Any]:
    args, extra = parser().split(argv)
    if args.heartbeat < 1:
        raise UserError("--heartbeat must be at least 1")
    if not args.config:
        raise UserError("give the study: --config FILE (configs/tune/*.yaml)")
    from mlcycle.selection.tune.spec import spec_of
    from mlcycle.selection.tune.worker import tune

    spec = spec_of(args, Path(str(args.config[0])))
    name = args.study or spec.path.stem
    out = Path(args.out) if args.out else Path("runs") / "tune" / name
    return tune(spec, name, out, extra, args.storage, spec.trials, args.timeout, args.heartbeat)
