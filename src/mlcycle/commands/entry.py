"""``[project.scripts]`` targets (the ``mlcycle-*`` aliases): each runs
``mlcycle.commands.<name>.main`` and exits 0 on success.

The ``main`` functions return what they did (a run directory, a report) for callers in Python;
a console script would take that value for an exit status, so these return nothing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable


def _alias(name: str) -> Callable[[], None]:
    def run() -> None:
        importlib.import_module(f"mlcycle.commands.{name}").main()

    run.__name__ = name
    return run


train, evaluate, export = _alias("train"), _alias("evaluate"), _alias("export")
validate_data, eda = _alias("validate_data"), _alias("eda")
materialize_data, compare = _alias("materialize_data"), _alias("compare")
tune, ensemble, serve = _alias("tune"), _alias("ensemble"), _alias("serve")
monitor, retrain, report = _alias("monitor"), _alias("retrain"), _alias("report")
