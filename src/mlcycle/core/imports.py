"""Objects named by an import path in a config (``class_path``, an estimator)."""

from __future__ import annotations

import importlib
from typing import Any

from mlcycle.core.errors import UserError


def import_object(path: str, what: str) -> Any:
    """The object at ``package.module.Name``; a one-line error naming ``what`` otherwise."""
    module, _, name = str(path).rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise UserError(f"{what} '{path}' cannot be imported: {exc}") from exc
