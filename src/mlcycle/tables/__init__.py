"""Tables as a kind of data: reading, schema, splits, the cleaning pipeline, the data module,
and (from :mod:`mlcycle.tables.task` and :mod:`mlcycle.tables.classic`) the table tasks.

Every name is imported on first use: registering the table tasks (which train.py does at every
start) must not import pandas and scikit-learn, and reading a table needs no task."""

from mlcycle.core.imports import lazy_names

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


__getattr__ = lazy_names("mlcycle.tables", _LAZY)


__all__ = sorted(_LAZY)
