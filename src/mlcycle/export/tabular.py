"""Tables: the exporter lives in :mod:`mlcycle.tables.export`; importing it here registers it
under ``tabular`` (the registry imports this package's modules)."""

from mlcycle.tables.export import TabularExport

__all__ = ["TabularExport"]
