"""mlcycle: a deep-learning training framework for the whole ML project life cycle.

The Python API (``mlcycle.train``, ``Run``, ``load``, ``compare``, ``UserError``) lives in
:mod:`mlcycle.api`; its names are imported on first use, so ``import mlcycle`` stays cheap."""

from typing import Any

__version__ = "0.1.0"

_API = ("train", "Run", "load", "Model", "compare", "UserError", "WrongType", "MissingExtra")


def __getattr__(name: str) -> Any:
    if name in _API:
        import importlib

        # importlib, not an import statement: the layers below import mlcycle (its version)
        # and must not be seen to import the API above them.
        return getattr(importlib.import_module("mlcycle.api"), name)
    raise AttributeError(f"module 'mlcycle' has no attribute '{name}'")


__all__ = ["__version__", *_API]
