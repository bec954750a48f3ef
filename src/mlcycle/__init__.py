"""mlcycle: a deep-learning training framework for the whole ML project life cycle."""

__version__ = "0.1.0"
