"""Errors a user can fix: printed as one line, exit code 2, no traceback."""

from __future__ import annotations

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


def main_guard(func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a script's ``main`` so that a :class:`UserError` becomes one line and exit code 2."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except UserError as exc:
            fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            fail("interrupted", 130)

    return wrapper
