"""Errors a user can fix: printed as one line, exit code 2, no traceback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any


class UserError(Exception):
    """Bad input from the user: a path, a config value, a data set that cannot be used.

    The message names the thing at fault and what to do about it.
    """

    exit_code = 2


def fail(message: str, code: int = 2) -> None:
    """Print ``message`` as one ``error:`` line on stderr and exit with ``code``."""
    sys.stderr.write(f"error: {' '.join(str(message).split())}\n")
    sys.stderr.flush()
    raise SystemExit(code)


def user_error_in(exc: BaseException | None) -> UserError | None:
    """The first :class:`UserError` in ``exc``'s chain of causes, if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, UserError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


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


class ArgParser(argparse.ArgumentParser):
    """argparse for the small scripts, with one-line errors and exit code 2."""

    def error(self, message: str):  # type: ignore[override]
        fail(f"{message} (see {self.prog} --help)", 2)
