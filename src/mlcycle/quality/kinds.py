"""The seam between the quality tools and the kinds of data they read.

A data module declares its kind by name (the class attribute ``data_kind``: ``classification``,
``segmentation``, ``detection`` for the image data modules, ``tabular`` for ``TabularData``). The
quality part of that kind, a :class:`DataQuality`, is registered under the same name in
:data:`DATA_QUALITY`, through the entry-point group ``mlcycle.data_quality``: mlcycle's own kinds
in its ``pyproject.toml``, a plugin's kinds in the plugin's. ``validate_data.py``, ``eda.py`` and
``materialize_data.py`` ask the part; they never test the data module's class.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlcycle.core.errors import UserError
from mlcycle.core.registry import Registry


class DataQuality:
    """What the quality tools need from one kind of data. A kind overrides what it supports."""

    task = ""  # what the reports call the data (``classification``, ``tabular``, ...)

    def add_arguments(self, parser: Any, command: str) -> None:
        """Options of this kind on ``command`` (``validate`` or ``eda``); none by default."""

    def named(self, args: Any) -> bool:
        """Whether the command line names data of this kind without a config (``--table``)."""
        return False

    def validate(self, args: Any, dm: Any, configs: list[str], overrides: list[str]) -> dict:
        """``validate_data.py``: check the data of ``dm`` (None when :meth:`named`), write the
        report folder ``args.out``, print a summary and return the report."""
        raise UserError(f"validate_data.py does not read {self.task} data")

    def explore(self, args: Any, dm: Any, configs: list[str], overrides: list[str]) -> Path:
        """``eda.py``: write the analysis of ``dm`` (None when :meth:`named`) to ``args.out``."""
        raise UserError(f"eda.py does not read {self.task} data")

    def materialize(self, dm: Any, out: Path, strip_exif: bool) -> dict[str, Any]:
        """``materialize_data.py``: copy the data of ``dm`` to ``out``; refused by default."""
        raise UserError(
            f"materialize_data.py copies classification data only; this config's data is "
            f"{self.task} ({type(dm).__name__}): copy its folder as it is, and check it with "
            "validate_data.py"
        )


DATA_QUALITY: Registry[DataQuality] = Registry(
    "kind of data the quality tools read", "data_kind", "mlcycle.data_quality"
)


def quality_of(dm: Any) -> DataQuality:
    """The quality part of the kind ``dm`` declares (its ``data_kind``)."""
    kind = getattr(dm, "data_kind", None)  # a data module not written for mlcycle has none
    if kind and kind in DATA_QUALITY:
        return DATA_QUALITY.get(kind)
    name = f"{type(dm).__module__}.{type(dm).__name__}"
    why = f"no checks for its data_kind '{kind}'" if kind else "it declares no data_kind"
    raise UserError(
        f"data.class_path '{name}' is not a data module these tools read ({why}); they read "
        f"the kinds {', '.join(DATA_QUALITY.names())}"
    )


def named_on_command_line(args: Any) -> DataQuality | None:
    """The kind whose data the command line names without a config, if any."""
    for name in DATA_QUALITY.names():
        if DATA_QUALITY.get(name).named(args):
            return DATA_QUALITY.get(name)
    return None


def part_and_data(args: Any, build: Callable[[], Any]) -> tuple[DataQuality, Any]:
    """The kind the command line names (with no data module), else the data module ``build()``
    makes of the config and the part of its kind."""
    named = named_on_command_line(args)
    if named is not None:
        return named, None
    dm = build()
    return quality_of(dm), dm


def add_kind_arguments(parser: Any, command: str) -> None:
    """Every kind's own options on ``command`` (``validate`` or ``eda``)."""
    for name in DATA_QUALITY.names():
        DATA_QUALITY.get(name).add_arguments(parser, command)
