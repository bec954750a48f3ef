"""``tune.py``: search hyperparameters with Optuna over train.py runs
(``mlcycle.selection.tune`` does the work; docs/tune.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlcycle.commands.guard import ArgParser, main_guard
from mlcycle.core.errors import UserError


def build_parser() -> ArgParser:
    parser = ArgParser(
        prog="tune.py",
        description="Search hyperparameters with Optuna (TPE and a median pruner) over train.py "
        "runs. Any other --key=value (e.g. --data.root PATH) goes to every train.py run.",
    )
    parser.add_argument("--config", required=True, help="tune YAML (configs/tune/*.yaml)")
    parser.add_argument("--out", help="study folder (default: runs/tune/<study>)")
    parser.add_argument("--study", help="study name (default: the YAML file's name)")
    parser.add_argument(
        "--storage", help="SQLAlchemy URL shared by the workers (default: sqlite:///<out>/study.db)"
    )
    parser.add_argument(
        "--trials", type=int, help="COMPLETE+PRUNED trials of the whole study (default: the YAML's)"
    )
    parser.add_argument(
        "--timeout", type=float, help="stop starting trials after this many seconds"
    )
    parser.add_argument(
        "--heartbeat",
        type=int,
        default=30,
        help="seconds between a running trial's heartbeats; "
        "a trial silent for 4x this long is failed by the next worker (default 30)",
    )
    return parser


@main_guard
def main(argv: list[str] | None = None) -> dict[str, Any]:
    from mlcycle.selection.tune.spec import load_tune_spec
    from mlcycle.selection.tune.worker import tune

    args, extra = build_parser().parse_passthrough(argv)
    for name in ("trials", "heartbeat"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise UserError(f"--{name} must be at least 1")
    spec = load_tune_spec(args.config)
    name = args.study or spec.path.stem
    out = Path(args.out) if args.out else Path("runs") / "tune" / name
    return tune(spec, name, out, extra, args.storage, args.trials, args.timeout, args.heartbeat)
