"""``train.py``: train one run from its config (``mlcycle.training.fit`` does the work).

Config errors that are certain from the files and the cached key schema are answered before
Lightning is imported (``mlcycle.training.precheck``), and so is ``--help``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mlcycle.commands.guard import main_guard
from mlcycle.core.errors import UserError
from mlcycle.training import cache
from mlcycle.training.fit import fit
from mlcycle.training.precheck import cached_help, check, is_help


@main_guard
def main(args: list[str] | None = None) -> Path:
    argv = list(sys.argv[1:] if args is None else args)
    if is_help(argv) and args is None:
        # A fresh process: the help text it prints is the one the next call gets from the cache.
        with cached_help(argv):
            return fit(args).run_dir
    error = None if is_help(argv) else check(argv, cache.load().get("schema"))
    if error:
        raise UserError(error)
    return fit(args).run_dir
