"""One LightningModule per task: loss, metrics and optimizer wiring around any architecture."""

from mlcycle.tasks.classification import ClassificationTask

__all__ = ["ClassificationTask"]
