"""Tables as a kind of data: reading, schema, splits, the cleaning pipeline, the data module,
and (from :mod:`mlcycle.tables.task` and :mod:`mlcycle.tables.classic`) the table tasks.

Every name is imported on first use: registering the table tasks (which train.py does at every
start) must not import pandas and scikit-learn, and reading a table needs no task."""

from typing import Any

_LAZY = {
    "TabularData": "mlcycle.tables.data",
    "build_pipeline": "mlcycle.tables.pipeline",
    "describe_features": "mlcycle.tables.pipeline",
    "fit_pipeline": "mlcycle.tables.pipeline",
    "TABLE_SOURCES": "mlcycle.tables.read",
    "read_table": "mlcycle.tables.read",
    "KINDS": "mlcycle.tables.schema",
    "Column": "mlcycle.tables.schema",
    "Schema": "mlcycle.tables.schema",
    "check_frame": "mlcycle.tables.schema",
    "infer_schema": "mlcycle.tables.schema",
    "row_problems": "mlcycle.tables.schema",
    "TabularTask": "mlcycle.tables.task",
    "TableTask": "mlcycle.tables.task",
    "ClassicTabularTask": "mlcycle.tables.classic",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mlcycle.tables' has no attribute '{name}'")


__all__ = sorted(_LAZY)
