"""What every command's ``main`` shares: one-line errors with exit code 2."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from mlcycle.core.errors import UserError, fail, user_error_in
from mlcycle.core.extras import command_missing_extra


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
