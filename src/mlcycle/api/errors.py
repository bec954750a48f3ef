"""The API's errors, one family under :class:`UserError`: what ``main_guard`` and ``fail`` print
and exit with becomes a :class:`UserError` carrying the same message (and exit code), and an
argument of the wrong type a :class:`WrongType` (also a ``TypeError``) naming the argument."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr
from typing import Any, TextIO

from mlcycle.core.errors import UserError, user_error_in


class WrongType(UserError, TypeError):
    """An API argument of the wrong type; the message names the argument."""


class _ErrorLines:
    """stderr that keeps ``fail``'s ``error: ...`` lines instead of printing them."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.lines: list[str] = []

    def write(self, text: str) -> int:
        if text.startswith("error: "):
            self.lines.append(text.removeprefix("error: ").strip())
            return len(text)
        return self.stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


@contextmanager
def user_errors() -> Iterator[None]:
    """Raise :class:`UserError` where a command would print one line and exit non-zero."""
    stream = _ErrorLines(sys.stderr)
    try:
        with redirect_stderr(stream):  # type: ignore[type-var]
            yield
    except SystemExit as exc:
        if exc.code in (0, None) or not stream.lines:
            raise
        error = UserError(stream.lines[-1])
        error.exit_code = exc.code if isinstance(exc.code, int) else 2
        raise error from None
    except UserError:
        raise
    except Exception as exc:
        # Libraries (jsonargparse, Lightning) wrap our errors; raise the one the user can fix.
        cause = user_error_in(exc)
        if cause is None:
            raise
        raise cause from exc
