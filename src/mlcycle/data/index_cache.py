"""The index cache: the facts of every file indexed before, kept across runs in one SQLite
table so that a second run over unchanged data reads no image.

A row is keyed by the file's absolute path and the fact kind (with the readers' version), and
holds the file's size, modification and change times (ns) when it was read: a file whose size
or times differ is read again. A file modified in the last :data:`RACY_SECONDS` is not stored (a second write within
the file system's time resolution could leave its time unchanged). The table lives in
``data.index_cache``, else ``$MLCYCLE_CACHE_DIR``, else ``$XDG_CACHE_HOME/mlcycle`` or
``~/.cache/mlcycle``; never inside the data. SQLite in WAL mode lets runs index at once; a cache
that cannot be opened, read or written is ignored with one warning line.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from mlcycle.core.cache_dir import cache_folder
from mlcycle.core.errors import UserError
from mlcycle.data.file_facts import Facts, readers_version

CACHE_FILE = "data-index-v1.sqlite"  # a new version when the facts change meaning
CONNECT_TRIES = 5  # a fresh cache file that another run is switching to WAL
RACY_SECONDS = 2  # FAT has 2 s file times; a file this fresh may be rewritten unnoticed
Stat = tuple[int, int, int]  # size, mtime_ns, ctime_ns
Key = tuple[str, str]  # absolute path, fact kind

SCHEMA = """CREATE TABLE IF NOT EXISTS facts (
    path TEXT NOT NULL, kind TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL, facts TEXT NOT NULL, PRIMARY KEY (path, kind)) WITHOUT ROWID"""

_warned: set[str] = set()  # one warning per cache file and process


def file_stat(path: str) -> Stat | None:
    """``(size, mtime_ns, ctime_ns)`` of the file (links followed); ``None`` when it cannot be
    read, or was modified too recently to be cached."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if st.st_mtime_ns > time.time_ns() - RACY_SECONDS * 10**9:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns


class IndexCache:
    """Facts of files, stored in ``folder/data-index-v1.sqlite``."""

    def __init__(self, folder: Path) -> None:
        self.file = folder / CACHE_FILE
        self.off = False
        self.version = readers_version()

    def _connect(self) -> sqlite3.Connection:
        self.file.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(CONNECT_TRIES):
            db = sqlite3.connect(self.file, timeout=30)  # another run's write waits
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.execute(SCHEMA)
                return db
            except sqlite3.OperationalError as exc:
                db.close()  # two runs creating the file at once: switching it to WAL can be
                if "locked" not in str(exc) or attempt == CONNECT_TRIES - 1:  # refused at once
                    raise
                time.sleep(0.1 * (attempt + 1))
            except BaseException:
                db.close()
                raise
        raise AssertionError("unreachable")

    def _give_up(self, exc: Exception) -> None:
        self.off = True
        if str(self.file) not in _warned:
            _warned.add(str(self.file))
            print(
                f"warning: index cache '{self.file}' cannot be used ({exc}); indexing without "
                "it (delete the file to start it afresh)",
                file=sys.stderr,
            )

    def lookup(self, wanted: dict[Key, Stat]) -> dict[Key, Facts]:
        """The stored facts of the keys whose file still has the stored size and times."""
        if self.off or not wanted:
            return {}
        by_kind: dict[str, list[str]] = {}
        for path, kind in wanted:
            by_kind.setdefault(kind, []).append(path)
        found: dict[Key, Facts] = {}
        try:
            db = self._connect()
            try:
                for kind, paths in by_kind.items():
                    for start in range(0, len(paths), 500):  # SQLite's limit on ? per query
                        chunk = paths[start : start + 500]
                        rows = db.execute(
                            "SELECT path, size, mtime_ns, ctime_ns, facts FROM facts "
                            f"WHERE kind = ? AND path IN ({','.join('?' * len(chunk))})",
                            [f"{kind} ({self.version})", *chunk],
                        )
                        for path, *stat, text in rows:
                            if tuple(stat) == wanted[(path, kind)]:
                                found[(path, kind)] = json.loads(text)
            finally:
                db.close()
        except (sqlite3.Error, OSError, ValueError) as exc:
            self._give_up(exc)
            return {}
        return found

    def store(self, rows: Iterable[tuple[Key, Stat, Facts]]) -> None:
        """Keep ``(key, stat, facts)`` rows, replacing older facts of the same keys."""
        values = [
            (path, f"{kind} ({self.version})", *stat, json.dumps(facts))
            for (path, kind), stat, facts in rows
        ]
        if self.off or not values:
            return
        try:
            db = self._connect()
            try:
                with db:
                    db.executemany("INSERT OR REPLACE INTO facts VALUES (?, ?, ?, ?, ?, ?)", values)
            finally:
                db.close()
        except (sqlite3.Error, OSError) as exc:
            self._give_up(exc)


def open_index_cache(setting: str | bool | None, data_folders: Iterable[Path]) -> IndexCache | None:
    """The cache ``data.index_cache`` asks for (``false``: none), refused inside the data:
    a folder named there stops the run, a default one is skipped with a warning."""
    if setting is False:
        return None
    if isinstance(setting, str) and setting.strip():
        folder, came_from = Path(setting).expanduser(), None
    else:
        folder, came_from = cache_folder()
    folder = folder.resolve()
    around = {folder, *folder.parents}
    inside = next((d for d in data_folders if d in around), None)
    if inside is None:
        return IndexCache(folder)
    if came_from is None:
        raise UserError(
            f"data.index_cache='{setting}' lies inside the data folder '{inside}'; the cache "
            "never writes into the data: name a folder outside it, or set data.index_cache=false"
        )
    print(
        f"warning: the index cache folder '{folder}' ({came_from}) lies inside the data folder "
        f"'{inside}'; indexing without the cache (set data.index_cache to a folder outside it)",
        file=sys.stderr,
    )
    return None
