"""The small YAML files users write for the scripts (comparisons, studies, thresholds)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mlcycle.core.errors import UserError


def read_mapping(path: str | Path, what: str) -> dict[str, Any]:
    """The mapping in the YAML file at ``path`` (empty file: ``{}``), read safely; a one-line
    error naming ``what`` and the file when it is missing, not YAML or not a mapping."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} '{path}' does not exist")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"{what} '{path}' is not valid YAML: {' '.join(str(exc).split())}") from exc
    if not isinstance(raw, dict):
        raise UserError(f"{what} '{path}' must be a mapping")
    return raw
