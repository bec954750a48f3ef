"""What every kind of ensemble checks of its members the same way: their split, their names,
and a comparison's shortlist.yaml with the paths it recorded."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import yaml

from mlcycle.core.errors import UserError
from mlcycle.run.loader import Run


def split_rows(run: Run) -> set[tuple[str, ...]]:
    """The rows of a run's ``splits.csv``: members must share them."""
    path = run.path / "splits.csv"
    if not path.is_file():
        raise UserError(f"run '{run.path}' has no splits.csv; was it trained by train.py?")
    with path.open(newline="") as fh:
        return {tuple(row) for row in csv.reader(fh)}


def unique_name(path: Path, taken: set[str]) -> str:
    """A member's name: its run folder's, numbered when taken."""
    name, n = path.name or "run", 1
    while name in taken:
        n += 1
        name = f"{path.name}-{n}"
    taken.add(name)
    return name


def read_shortlist(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(
            f"shortlist '{path}' does not exist; compare.py writes <out>/shortlist.yaml"
        )
    document = yaml.safe_load(path.read_text()) or {}
    if not isinstance(document, dict) or not isinstance(document.get("members"), list):
        raise UserError(f"'{path}' is not a shortlist.yaml written by compare.py (no members)")
    return document


def locate(given: str, fallback: Path) -> Path:
    """A path recorded by compare.py, else the same place under the shortlist's folder (the
    comparison may have been moved, or run from another directory)."""
    path = Path(given)
    return path if path.exists() else fallback


def member_runs(entry: dict[str, Any], folder: Path) -> list[Path]:
    """The fold runs a shortlist member lists, found where compare.py wrote them or under the
    shortlist's folder."""
    home = folder / "candidates" / str(entry.get("name"))
    return [locate(str(r), home / Path(str(r)).name) for r in entry.get("runs") or []]
