"""Samples that cannot be used: the exception a reader raises, and what happens when files are
skipped (listed in ``skipped_files.csv``; with ``data.strict=true`` the run stops instead)."""

from __future__ import annotations

from mlcycle.core.errors import UserError


class BadSample(Exception):
    """A sample that cannot be used (unreadable file, bad label); the message says why."""


def no_usable_data(where: str, skipped: list[tuple[str, str]], what: str) -> UserError:
    """The error when every sample was skipped: names the first problem."""
    if skipped:
        path, reason = skipped[0]
        return UserError(
            f"no usable {what} in '{where}': all {len(skipped)} were skipped; the first: '{path}': {reason}"
        )
    return UserError(f"no {what} found in '{where}'")


def check_strict(skipped: list[tuple[str, str]], strict: bool, where: str) -> None:
    """With ``data.strict=true`` any skipped file stops the run (pipelines that must not drop
    data silently)."""
    if strict and skipped:
        path, reason = skipped[0]
        raise UserError(
            f"data.strict=true and {len(skipped)} file(s) of '{where}' would be skipped; the first: "
            f"'{path}': {reason}. Fix or remove them, or set data.strict=false to skip and list them"
        )
