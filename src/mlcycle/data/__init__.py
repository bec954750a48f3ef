"""Data: sources (folder, CSV, digits), splits, transforms and the DataModules."""

from mlcycle.data.classification import ImageClassificationData
from mlcycle.data.sources import SOURCES, Sample, register_source
from mlcycle.data.sql import sql_source  # noqa: F401  (registers the 'sql' source)

__all__ = ["SOURCES", "ImageClassificationData", "Sample", "register_source"]
