"""A run directory's folder and ``config.yaml``, checked and read with yaml alone (no Lightning),
for :class:`mlcycle.run.loader.Run` and the Python API's ``Run``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mlcycle.core.errors import UserError


def read_run_dir(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """The run directory ``path`` and its ``config.yaml``; a one-line error when it is not one."""
    folder = Path(path)
    if not folder.is_dir():
        raise UserError(
            f"run directory '{path}' does not exist; pass the folder train.py printed last"
        )
    config_file = folder / "config.yaml"
    if not config_file.is_file():
        raise UserError(
            f"'{config_file}' is missing; is '{path}' a run directory written by train.py?"
        )
    return folder, yaml.safe_load(config_file.read_text()) or {}
