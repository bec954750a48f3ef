"""Data: sources (folder, CSV, digits), splits, transforms and the DataModules."""

from mlcycle.data.classification import ImageClassificationData
from mlcycle.data.sources import SOURCES, Sample, register_source

__all__ = ["SOURCES", "ImageClassificationData", "Sample", "register_source"]
