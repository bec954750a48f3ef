"""Built-in data sets (digits, shapes) are written once: into a temporary folder beside the
root, then renamed into place, so an interrupted write leaves nothing half-done; a folder we did
not write is never touched. :func:`write_folder` does the writing (also for
``materialize_data.py``)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

MARKER = ".complete"
T = TypeVar("T")


def write_once(root: Path, write: Callable[[Path], None], note: str) -> Path:
    """Run ``write(tmp)`` and rename ``tmp`` to ``root``; never touch a folder we did not write."""
    root = Path(root)
    if (root / MARKER).exists() or (root.exists() and any(root.iterdir())):
        return root

    def write_marked(tmp: Path) -> None:
        write(tmp)
        (tmp / MARKER).write_text(note + "\n")

    write_folder(root, write_marked, f".{root.name}-")
    return root


def write_folder(root: Path, write: Callable[[Path], T], prefix: str) -> T:
    """``write(tmp)`` into a new folder ``tmp`` (named ``prefix`` and random letters) beside
    ``root``, then ``tmp`` renamed to ``root``, which must be missing or empty; ``tmp`` is removed
    if ``write`` fails. Returns what ``write`` returns."""
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=root.parent))
    try:
        result = write(tmp)
        if root.exists():
            root.rmdir()
        os.replace(tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return result
