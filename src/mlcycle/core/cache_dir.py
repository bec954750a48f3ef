"""Where mlcycle keeps what it can rebuild (the data index, train.py's start-up cache)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_folder() -> tuple[Path, str]:
    """``$MLCYCLE_CACHE_DIR``, else ``$XDG_CACHE_HOME/mlcycle``, else ``~/.cache/mlcycle``; and
    where that choice came from, for messages."""
    if os.environ.get("MLCYCLE_CACHE_DIR"):
        return Path(os.environ["MLCYCLE_CACHE_DIR"]).expanduser(), "MLCYCLE_CACHE_DIR"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"  # XDG: relative is invalid
    return base / "mlcycle", "the default cache folder"
