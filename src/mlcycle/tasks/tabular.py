"""Tables: the MLP task lives in :mod:`mlcycle.tables`; importing it here registers it in
``TASKS`` (the registry imports this package's modules)."""

from mlcycle.tables.task import TabularTask

__all__ = ["TabularTask"]
