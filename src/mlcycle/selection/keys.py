"""The checks the selection YAML files (compare, tune) share: lists of strings and known keys."""

from __future__ import annotations

from typing import Any

from mlcycle.core.errors import UserError


def string_list(value: Any, key: str, where: str) -> list[str]:
    """``value`` as a list of strings (one string is a list of one); None is empty."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UserError(f"{where}: '{key}' must be a string or a list of strings")
    return list(value)


def check_keys(keys: set[str], allowed: set[str], where: str) -> None:
    """Refuse the first unknown key, naming the valid ones."""
    extra = sorted(keys - allowed)
    if extra:
        raise UserError(
            f"{where}: unknown key '{extra[0]}'; valid keys are {', '.join(sorted(allowed))}"
        )
