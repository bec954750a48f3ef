"""One registry mechanism for every extension point: architectures, data sources and formats,
tasks, evaluators and exporters.

A :class:`Registry` holds objects by name. Built-ins register from their own files with
``@REGISTRY.register("name")``; the registry imports the modules of its ``locations``
(packages) the first time it is asked, so no import line lists them. Code outside mlcycle
registers through a Python entry point in the registry's ``group``
(``[project.entry-points."mlcycle.architectures"]`` in a plugin's ``pyproject.toml``): the entry
point names a module, whose decorators register on import, or an object, registered under the
entry point's name. ``pip install`` a plugin and its names are there, with no edit to mlcycle.

An unknown name is a :class:`~mlcycle.core.errors.UserError` (exit 2) that lists the registered
names and the closest one.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable, Iterator, Sequence
from importlib.metadata import entry_points
from types import ModuleType
from typing import Generic, TypeVar

from mlcycle.core.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    """Objects of one kind by name.

    Args:
        kind: what the objects are, for messages (``"classification architecture"``).
        key: the config key that names one (``"model.arch"``), for messages.
        group: the entry-point group plugins register through.
        locations: packages whose modules are imported (once) to register the built-ins.
    """

    def __init__(self, kind: str, key: str, group: str, locations: Sequence[str] = ()) -> None:
        self.kind, self.key, self.group = kind, key, group
        self.locations = tuple(locations)
        self._items: dict[str, T] = {}
        self._loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register the decorated object under ``name``."""

        def decorator(obj: T) -> T:
            self.add(name, obj)
            return obj

        return decorator

    def add(self, name: str, obj: T) -> None:
        known = self._items.get(name)
        if known is not None and known is not obj:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._items[name] = obj

    def load(self) -> None:
        """Import the built-in modules and the plugins' entry points (once)."""
        if self._loaded:
            return
        self._loaded = True
        for package in self.locations:
            for module in _modules(package):
                importlib.import_module(module)
        for point in entry_points(group=self.group):
            try:
                loaded = point.load()
            except Exception as exc:  # a broken plugin names itself, not a traceback
                raise UserError(
                    f"the plugin entry point '{point.name} = {point.value}' in group "
                    f"'{self.group}' failed to load: {exc}"
                ) from exc
            if not isinstance(loaded, ModuleType):
                self.add(point.name, loaded)

    def names(self) -> list[str]:
        self.load()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> T:
        """The object registered as ``name``; an unknown name names the closest and the rest."""
        self.load()
        if name not in self._items:
            names = self.names()
            close = difflib.get_close_matches(str(name), names, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise UserError(
                f"unknown {self.key} '{name}' ({self.kind}); {hint}registered: {', '.join(names) or 'none'}"
            )
        return self._items[name]


def _modules(package: str) -> Iterator[str]:
    """Every module below ``package`` (sub-packages included), skipping private ones."""
    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
        if not info.name.rsplit(".", 1)[-1].startswith("_"):
            yield info.name
