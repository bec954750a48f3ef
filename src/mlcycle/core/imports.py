"""Objects named by an import path in a config (``class_path``, an estimator)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from mlcycle.core.errors import UserError


def import_object(path: str, what: str) -> Any:
    """The object at ``package.module.Name``; a one-line error naming ``what`` otherwise."""
    module, _, name = str(path).rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise UserError(f"{what} '{path}' cannot be imported: {exc}") from exc


def lazy_names(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A package's module ``__getattr__`` that imports each of ``names`` (name -> module) on
    first use, so importing the package stays cheap."""

    def __getattr__(name: str) -> Any:
        if name in names:
            return getattr(importlib.import_module(names[name]), name)
        raise AttributeError(f"module '{package}' has no attribute '{name}'")

    return __getattr__
