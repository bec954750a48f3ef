"""What every command's ``main`` shares: one-line errors with exit code 2, and argparse with
the same errors for the small scripts."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from functools import wraps
from typing import Any

from mlcycle.core.errors import UserError, fail, user_error_in
from mlcycle.core.extras import command_missing_extra
from mlcycle.edge.options import Parser


def main_guard(func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a script's ``main`` so that a :class:`UserError` becomes one line and exit code 2."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except UserError as exc:
            fail(str(exc), exc.exit_code)
        except Exception as exc:
            # Libraries (jsonargparse, Lightning) wrap our errors; find the one the user can fix,
            # or name the extra to install when a package of one is missing.
            cause = user_error_in(exc) or command_missing_extra(exc, func.__module__)
            if cause is None:
                raise
            fail(str(cause), cause.exit_code)
        except KeyboardInterrupt:
            fail("interrupted", 130)

    return wrapper


class ArgParser(Parser):
    """argparse for the small scripts: one-line errors (whitespace folded, as every command
    prints them) and exit code 2; a long option in either spelling (``edge.options.Parser``)."""

    def error(self, message: str):  # type: ignore[override]
        fail(f"{message} (see {self.prog} --help)", 2)

    def parse_passthrough(self, argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
        """This command's options, and the other ``--key=value`` it passes on to train.py; a
        single-dash option is refused (a typo, never a train.py key)."""
        args, extra = self.parse_known_args(argv)
        bad = [a for a in extra if a.startswith("-") and not a.startswith("--")]
        if bad:
            raise UserError(f"unknown option '{bad[0]}' (see {self.prog} --help)")
        return args, extra
