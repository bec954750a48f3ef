"""train.py runs inside compare.py and tune.py: a fold's arguments, the run kept quiet (its
printing goes to its own ``train.log``), and one line for a run that failed."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlcycle.core.errors import UserError, user_error_in

LOGGERS = ("lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero")


@contextlib.contextmanager
def quiet_to(log: Path) -> Iterator[None]:
    """Send a run's printing (and Lightning's info lines) to ``log`` instead of the console."""
    levels = {n: logging.getLogger(n).level for n in LOGGERS}
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        with log.open("a") as fh, contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def train_args(base: list[str], candidate_args: list[str], split_file: Path, run_dir: Path):
    """train.py's arguments for one fold (resuming the fold's run when it was interrupted)."""
    args = [
        *base,
        *candidate_args,
        f"--data.split_file={split_file}",
        f"--run_dir={run_dir}",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
    ]
    if (run_dir / "checkpoints" / "last.ckpt").is_file():
        args.append("--ckpt_path=last")
    return args


def fit_quietly(
    args: list[str], run_dir: Path, callbacks: list[Any] | None = None
) -> tuple[Any, float]:
    """Train as train.py does, its printing sent to ``run_dir/train.log``: the CLI (its
    ``datamodule``) and the seconds the fit took."""
    from mlcycle.training.fit import fit

    run_dir.mkdir(parents=True, exist_ok=True)
    clock = time.perf_counter()
    with quiet_to(run_dir / "train.log"):
        cli = fit(args, callbacks)
    return cli, time.perf_counter() - clock


def error_line(exc: BaseException) -> str:
    """One line for a leaderboard or a trial: the user-fixable cause when there is one."""
    cause = user_error_in(exc) or exc
    text = " ".join(str(cause).split()) or type(cause).__name__
    return text if isinstance(cause, UserError) else f"{type(cause).__name__}: {text}"
