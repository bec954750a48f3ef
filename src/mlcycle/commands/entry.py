"""``[project.scripts]`` targets: each runs ``mlcycle.commands.<name>.main`` and exits 0 on
success.

The ``main`` functions return what they did (a run directory, a report) for callers in Python;
a console script would take that value for an exit status, so these return nothing.
"""

from __future__ import annotations

import importlib


def _run(name: str) -> None:
    importlib.import_module(f"mlcycle.commands.{name}").main()


def train() -> None:
    _run("train")


def evaluate() -> None:
    _run("evaluate")


def export() -> None:
    _run("export")


def validate_data() -> None:
    _run("validate_data")


def eda() -> None:
    _run("eda")


def materialize_data() -> None:
    _run("materialize_data")


def compare() -> None:
    _run("compare")


def tune() -> None:
    _run("tune")


def ensemble() -> None:
    _run("ensemble")


def serve() -> None:
    _run("serve")


def monitor() -> None:
    _run("monitor")


def retrain() -> None:
    _run("retrain")


def report() -> None:
    _run("report")
