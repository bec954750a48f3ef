"""The table kind's quality part: what ``validate_data.py`` and ``eda.py`` do with a table named
on the command line (``--table PATH --target COLUMN``, with ``--source``, ``--url``, ``--query``,
``--task``, ``--drop``) or read by a config's ``TabularData``.

Registered as the kind ``tabular`` (``mlcycle.data_quality`` entry point)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlcycle.quality.kinds import DataQuality
from mlcycle.tables.quality import source


class TableQuality(DataQuality):
    """Tables: the column and row checks, and the table EDA."""

    task = "tabular"

    def add_arguments(self, parser: Any, command: str) -> None:
        if command == "validate":
            from mlcycle.tables.quality.validate import add_options

            add_options(parser)
        else:
            source.add_arguments(parser)

    def named(self, args: Any) -> bool:
        return source.wanted(args)

    def validate(self, args: Any, dm: Any, configs: list[str], overrides: list[str]) -> dict:
        from mlcycle.tables.quality.validate import run

        return run(args, dm, overrides)

    def explore(self, args: Any, dm: Any, configs: list[str], overrides: list[str]) -> Path:
        from mlcycle.tables.quality.eda_report import run

        return run(args, dm, configs, overrides)


QUALITY = TableQuality()
