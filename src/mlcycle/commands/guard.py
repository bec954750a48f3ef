"""What every command's ``main`` shares: one-line errors with exit code 2, and argparse with
the same errors for the small scripts."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Collection, Sequence
from functools import wraps
from typing import Any

from mlcycle.core.errors import UserError, fail, user_error_in


def main_guard(func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a script's ``main`` so that a :class:`UserError` becomes one line and exit code 2."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except UserError as exc:
            fail(str(exc), exc.exit_code)
        except Exception as exc:
            # Libraries (jsonargparse, Lightning) wrap our errors; find the one the user can fix.
            cause = user_error_in(exc)
            if cause is None:
                raise
            fail(str(cause), cause.exit_code)
        except KeyboardInterrupt:
            fail("interrupted", 130)

    return wrapper


def either_spelling(argv: list[str], known: Collection[str]) -> list[str]:
    """``argv`` with each long option spelled as ``known`` spells it: ``--top_k`` becomes
    ``--top-k`` and ``--run-dir`` becomes ``--run_dir``, with or without ``=value``. An option
    known in neither spelling, and everything after ``--``, is left as it is."""
    out = []
    for i, arg in enumerate(argv):
        if arg == "--":
            return out + argv[i:]
        name, eq, value = arg.partition("=")
        if name.startswith("--") and name not in known:
            dashed, underscored = name[2:].replace("_", "-"), name[2:].replace("-", "_")
            name = next((f"--{o}" for o in (dashed, underscored) if f"--{o}" in known), name)
        out.append(name + eq + value)
    return out


class ArgParser(argparse.ArgumentParser):
    """argparse for the small scripts, with one-line errors and exit code 2. A long option is
    also accepted in its other spelling (``--top_k`` for ``--top-k``), as train.py spells its
    flags; ``--help`` lists one."""

    def error(self, message: str):  # type: ignore[override]
        fail(f"{message} (see {self.prog} --help)", 2)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        argv = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(
            either_spelling(argv, self._option_string_actions), namespace
        )

    def parse_passthrough(self, argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
        """This command's options, and the other ``--key=value`` it passes on to train.py; a
        single-dash option is refused (a typo, never a train.py key)."""
        args, extra = self.parse_known_args(argv)
        bad = [a for a in extra if a.startswith("-") and not a.startswith("--")]
        if bad:
            raise UserError(f"unknown option '{bad[0]}' (see {self.prog} --help)")
        return args, extra
