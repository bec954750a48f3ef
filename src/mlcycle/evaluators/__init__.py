"""Per-task evaluation for ``evaluate.py``, registered by the task's class name.

An evaluator takes ``(model, data, split, run_dir)``, writes its figures into ``run_dir`` and
returns a JSON-ready dict with at least ``images`` and ``metrics``. A new task adds one file
here with ``@register_evaluator("MyTask")`` and one import line below.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlcycle.errors import UserError

Evaluator = Callable[..., dict[str, Any]]
EVALUATORS: dict[str, Evaluator] = {}


def register_evaluator(task_name: str) -> Callable[[Evaluator], Evaluator]:
    def decorator(fn: Evaluator) -> Evaluator:
        EVALUATORS[task_name] = fn
        return fn

    return decorator


def evaluator_for(model: Any) -> Evaluator:
    for cls in type(model).__mro__:
        if cls.__name__ in EVALUATORS:
            return EVALUATORS[cls.__name__]
    raise UserError(f"evaluate.py does not know how to score a {type(model).__name__}")


from mlcycle.evaluators import classification, detection, segmentation  # noqa: E402,F401  (registration)
