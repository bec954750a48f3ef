"""Built-in data sets (digits, shapes) are written once: into a temporary folder beside the
root, then renamed into place, so an interrupted write leaves nothing half-done; a folder we did
not write is never touched."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

MARKER = ".complete"


def write_once(root: Path, write: Callable[[Path], None], note: str) -> Path:
    """Run ``write(tmp)`` and rename ``tmp`` to ``root``; never touch a folder we did not write."""
    root = Path(root)
    if (root / MARKER).exists() or (root.exists() and any(root.iterdir())):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    try:
        write(tmp)
        (tmp / MARKER).write_text(note + "\n")
        if root.exists():
            root.rmdir()
        os.replace(tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root
