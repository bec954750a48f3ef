"""``[project.scripts]`` targets: each runs a command's ``main`` and exits 0 on success.

The ``main`` functions return what they did (a run directory, a report) for callers in Python;
a console script would take that value for an exit status, so these return nothing.
"""

from __future__ import annotations


def train() -> None:
    from mlcycle.commands.train import main

    main()


def evaluate() -> None:
    from mlcycle.commands.evaluate import main

    main()


def export() -> None:
    from mlcycle.export.cli import main

    main()


def validate_data() -> None:
    from mlcycle.quality.validate import main

    main()


def eda() -> None:
    from mlcycle.quality.eda.main import main

    main()


def materialize_data() -> None:
    from mlcycle.quality.materialize import main

    main()


def compare() -> None:
    from mlcycle.selection.compare import main

    main()


def tune() -> None:
    from mlcycle.selection.tune import main

    main()


def ensemble() -> None:
    from mlcycle.selection.ensemble import main

    main()


def serve() -> None:
    from mlcycle.serve.cli import main

    main()


def monitor() -> None:
    from mlcycle.monitor.cli import main

    main()


def retrain() -> None:
    from mlcycle.retrain.cli import main

    main()


def report() -> None:
    from mlcycle.reports.model_card import main

    main()
