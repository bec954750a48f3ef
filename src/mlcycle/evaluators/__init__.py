"""Per-task evaluation for ``evaluate.py``, registered by the task's class name.

An evaluator takes ``(model, data, split, run_dir)``, writes its figures into ``run_dir`` and
returns a JSON-ready dict with at least ``images`` and ``metrics``. A new task adds one file
here (or a plugin module in the ``mlcycle.evaluators`` entry-point group) with
``@EVALUATORS.register("MyTask")``; the registry finds it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlcycle.errors import UserError
from mlcycle.registry import Registry

Evaluator = Callable[..., dict[str, Any]]
EVALUATORS: Registry[Evaluator] = Registry(
    "evaluator", "task", "mlcycle.evaluators", ["mlcycle.evaluators"]
)
register_evaluator = EVALUATORS.register


def evaluator_for(model: Any) -> Evaluator:
    """The evaluator of ``model``'s task class, or of the nearest base class that has one."""
    for cls in type(model).__mro__:
        if cls.__name__ in EVALUATORS:
            return EVALUATORS.get(cls.__name__)
    raise UserError(
        f"evaluate.py does not know how to score a {type(model).__name__}; evaluators exist for "
        f"{', '.join(EVALUATORS.names())}"
    )
