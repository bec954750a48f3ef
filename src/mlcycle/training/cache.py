"""train.py's start-up cache: what answering ``--help`` or naming a bad config key needs from
Lightning, kept so that the next call answers without importing it (importing Lightning alone
takes seconds). The other commands keep every command's option keys here (``command_keys``):
an unknown option names the command it belongs to, and the data tools' parsers import Lightning.

One JSON file per Python environment in ``$MLCYCLE_CACHE_DIR``, else ``$XDG_CACHE_HOME/mlcycle``
or ``~/.cache/mlcycle``. It holds a stamp of everything its content depends on (the Python
version, the installed distributions and their versions, the mlcycle source files' sizes and
modification times); a file with another stamp is stale and is rebuilt by the next call that
imports Lightning anyway. A cache that cannot be read or written is ignored: it only saves time.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import mlcycle
from mlcycle.core.cache_dir import cache_folder

VERSION = 2  # a new number when the file's content changes meaning


def cache_file() -> Path:
    # Environments (venvs) share the folder; each keeps its own file.
    env = hashlib.sha256(sys.prefix.encode()).hexdigest()[:12]
    return cache_folder()[0] / f"train-startup-{env}.json"


@functools.cache
def stamp() -> str:
    """A digest of what the cached help and key schema depend on; about 15 ms."""
    parts: list[Any] = [VERSION, sys.version, sys.executable]
    # A dist-info folder's name carries the version: an install, upgrade or removal renames one.
    for entry in sys.path:
        if entry and os.path.isdir(entry):
            names = sorted(n for n in os.listdir(entry) if n.endswith((".dist-info", ".egg-info")))
            if names:  # folders without any (the script's, the tests') do not count
                parts.append([entry, names])
    source = Path(mlcycle.__file__).parent
    for folder, dirs, files in os.walk(source):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".py"):
                info = os.stat(os.path.join(folder, name))
                parts.append([os.path.join(folder, name), info.st_size, info.st_mtime_ns])
    parts.append(sorted((k, v) for k, v in os.environ.items() if k.startswith("JSONARGPARSE_")))
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def load() -> dict[str, Any]:
    """The cache's content when its stamp is current, else an empty cache."""
    try:
        content = json.loads(cache_file().read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(content, dict) or content.get("stamp") != stamp():
        return {}
    return content


def update(**parts: Any) -> None:
    """Write ``parts`` into the cache (merged into a current one, replacing a stale one)."""
    content = load()
    content.update(parts, stamp=stamp())
    path = cache_file()
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(json.dumps(content))
        os.replace(temporary, path)  # atomic: concurrent runs never read half a file
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
