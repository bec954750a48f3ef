"""The API's arguments as the commands' words: config paths and overrides to ``--key=value``."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlcycle.api.errors import WrongType
from mlcycle.core.errors import UserError


def expect(name: str, value: Any, types: type | tuple[type, ...], wanted: str) -> None:
    """Raise :class:`WrongType` naming ``name`` unless ``value`` is one of ``types``."""
    if not isinstance(value, types) or isinstance(value, bool) and bool not in _tuple(types):
        raise WrongType(f"{name}: expected {wanted}, got {type(value).__name__} {value!r}")


def _tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def paths(name: str, value: Any) -> list[Path]:
    """A path or a list of paths, as a list."""
    items = list(value) if isinstance(value, list | tuple) else [value]
    for item in items:
        expect(name, item, (str, os.PathLike), "a path or a list of paths")
    if not items:
        raise UserError(f"{name}: give at least one path")
    return [Path(item) for item in items]


def flatten(overrides: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"trainer": {"max_epochs": 3}}`` and ``{"trainer.max_epochs": 3}`` alike to
    ``{"trainer.max_epochs": 3}``."""
    flat: dict[str, Any] = {}
    for key, value in overrides.items():
        expect("override key", key, str, "a string")
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def text(name: str, value: Any) -> str:
    """Override ``name``'s value as the command line spells it (YAML, which jsonargparse reads)."""
    if isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    try:
        return json.dumps(value)
    except TypeError as exc:
        raise WrongType(
            f"{name}: expected a plain value (number, text, path, list), "
            f"got {type(value).__name__} {value!r}"
        ) from exc


def override_args(overrides: Mapping[str, Any]) -> list[str]:
    """Overrides as ``--key=value`` arguments, in the order given."""
    return [f"--{key}={text(key, value)}" for key, value in flatten(overrides).items()]
