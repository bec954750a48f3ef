"""Tables as a kind of data: reading, schema, splits, the cleaning pipeline, the data module,
and (from :mod:`mlcycle.tables.task` and :mod:`mlcycle.tables.classic`) the table tasks."""

from typing import Any

from mlcycle.tables.data import TabularData
from mlcycle.tables.pipeline import build_pipeline, describe_features, fit_pipeline
from mlcycle.tables.read import TABLE_SOURCES, read_table
from mlcycle.tables.schema import KINDS, Column, Schema, check_frame, infer_schema, row_problems

# The tasks are imported on first use: reading a table needs neither.
_LAZY = {
    "TabularTask": "mlcycle.tables.task",
    "TableTask": "mlcycle.tables.task",
    "ClassicTabularTask": "mlcycle.tables.classic",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mlcycle.tables' has no attribute '{name}'")


__all__ = [
    "KINDS",
    "TABLE_SOURCES",
    "Column",
    "Schema",
    "TabularData",
    "build_pipeline",
    "check_frame",
    "describe_features",
    "fit_pipeline",
    "infer_schema",
    "read_table",
    "row_problems",
]
