"""Which kind of comparison cross-validates a task: a registry keyed by the task's
``task_name``.

A kind is a :class:`~mlcycle.selection.compare.comparison.Comparison` subclass. mlcycle's own
register through entry points in its ``pyproject.toml`` (the image tasks' from
``mlcycle.images.selection``, the table task's from ``mlcycle.tables.selection``), and a plugin
registers its task's the same way, in the group ``mlcycle.comparisons``::

    [project.entry-points."mlcycle.comparisons"]
    multilabel = "my_package.compare:MultiLabelComparison"

compare.py and tune.py (with folds) use it; nothing here knows a task or a kind of data.
"""

from __future__ import annotations

from typing import Any

from mlcycle.core.errors import UserError
from mlcycle.core.registry import Registry
from mlcycle.selection.compare.comparison import Comparison
from mlcycle.selection.config import task_name

GROUP = "mlcycle.comparisons"
COMPARISONS: Registry[type[Comparison]] = Registry("kind of comparison", "task_name", GROUP)


def comparison_kind(config: dict[str, Any], required: bool = True) -> type[Comparison]:
    """The kind of comparison of the config's task. Unregistered: a one-line error, or (not
    ``required``: only the task's monitor is asked) the base class."""
    name = task_name(config)
    if name in COMPARISONS:
        return COMPARISONS.get(name)
    if not required:
        return Comparison
    raise UserError(
        f"the task '{name}' ({config['model']['class_path']}) declares no way to be "
        f"cross-validated; compare.py (and tune.py's folds) take the tasks registered in the "
        f"entry-point group '{GROUP}': {', '.join(COMPARISONS.names()) or 'none'} "
        "(docs/selection.md, 'How a task is cross-validated')"
    )
