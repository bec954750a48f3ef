"""One LightningModule per task: loss, metrics and optimizer wiring around any architecture.

The contract every task keeps is :class:`mlcycle.tasks.base.Task`; :data:`TASKS` holds them by
``task_name``.
"""

from mlcycle.tasks.base import TASKS, Monitor, Task, register_task
from mlcycle.tasks.classification import ClassificationTask

__all__ = ["TASKS", "ClassificationTask", "Monitor", "Task", "register_task"]
