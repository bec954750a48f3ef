"""Errors a user can fix: printed as one line, exit code 2, no traceback."""

from __future__ import annotations

import sys


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
