"""The model registry: one JSON file listing every version, its decision, and the champion.

```json
{"format_version": 1, "champion": 2, "lineage": [1, 2],
 "versions": [{"version": 1, "run": "/abs/run", "decision": "initial", ...}, ...],
 "events": [{"time": "...", "event": "promote", "version": 2, ...}, ...]}
```

``lineage`` lists the versions that became champion, in order; its last one is the champion and
``--rollback`` drops it (the one before becomes champion again). Every change is an event.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlcycle.core.errors import UserError

DEFAULT_REGISTRY = Path("runs/registry.json")
FORMAT_VERSION = 1


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Registry:
    """A registry file, loaded; :meth:`save` writes it back atomically."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data
        self.pointer_path: Path | None = None  # --pointer; None: next to the file

    @classmethod
    def load(cls, path: str | Path) -> Registry:
        """The registry at ``path``; an empty one when the file does not exist yet."""
        path = Path(path)
        if path.is_dir():
            raise UserError(f"--registry '{path}' is a folder; give a .json file path")
        if not path.exists():
            empty = {"format_version": FORMAT_VERSION, "champion": None, "lineage": []}
            return cls(path, {**empty, "versions": [], "events": []})
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise UserError(f"registry '{path}' cannot be read as JSON: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("versions"), list):
            raise UserError(f"'{path}' is not a model registry written by retrain.py")
        return cls(path, data)

    def save(self) -> None:
        from mlcycle.core.record import write_json  # it imports torch: not in serve --registry

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_json(self.path, self.data)
        except OSError as exc:
            raise UserError(f"cannot write registry '{self.path}': {exc.strerror}") from exc

    @property
    def versions(self) -> list[dict[str, Any]]:
        return self.data["versions"]

    @property
    def champion(self) -> dict[str, Any] | None:
        number = self.data.get("champion")
        return self.version(number) if number else None

    def version(self, number: int) -> dict[str, Any]:
        return self.versions[number - 1]

    def find_run(self, run: Path) -> dict[str, Any] | None:
        """The latest version registered for run directory ``run``."""
        key = str(Path(run).resolve())
        return next((v for v in reversed(self.versions) if v["run"] == key), None)

    def add_version(self, run: Path, **fields: Any) -> dict[str, Any]:
        """Register ``run`` as the next version (not yet champion)."""
        entry = {"version": len(self.versions) + 1, "run": str(Path(run).resolve())}
        entry.update(registered=now(), **fields)
        self.versions.append(entry)
        return entry

    def event(self, kind: str, **fields: Any) -> None:
        self.data["events"].append({"time": now(), "event": kind, **fields})

    def promote(self, number: int, reason: str) -> None:
        previous = self.data.get("champion")
        self.data["lineage"].append(number)
        self.data["champion"] = number
        self.event("promote", version=number, previous=previous, reason=reason)

    def rollback(self, reason: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Make the previous champion the champion again; returns ``(dropped, restored)``."""
        dropped, restored = self.step_back()
        self.event(
            "rollback", version=restored["version"], previous=dropped["version"], reason=reason
        )
        return dropped, restored

    def step_back(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The lineage without its last champion, in memory (no event)."""
        lineage = self.data["lineage"]
        if len(lineage) < 2:
            held = f"v{lineage[-1]} is the only champion it has had" if lineage else "it is empty"
            raise UserError(f"nothing to roll back to in registry '{self.path}': {held}")
        dropped = lineage.pop()
        self.data["champion"] = lineage[-1]
        self.version(dropped)["rolled_back"] = now()
        return self.version(dropped), self.version(lineage[-1])

    def pointer(self) -> Path:
        """``<registry dir>/champion`` (or ``--pointer``): the file the server watches."""
        return self.pointer_path or self.path.parent / "champion"

    def write_pointer(self) -> Path:
        """Write the champion's run directory into :meth:`pointer`, atomically (a reader sees
        the old line or the new one, never half of one)."""
        champion = self.champion
        if champion is None:
            raise UserError(f"registry '{self.path}' has no champion to point at")
        path = self.pointer()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(".champion.tmp")
        tmp.write_text(champion["run"] + "\n")
        tmp.replace(path)
        return path


def open_registry(where: str | Path, pointer: str | Path | None = None) -> Registry:
    """The registry at ``where``: a JSON file, or a database URL (``sqlite:///...``,
    ``postgresql+psycopg://...``: :mod:`mlcycle.retrain.registry_sql`)."""
    if "://" in str(where):
        from mlcycle.retrain.registry_sql import SqlRegistry

        return SqlRegistry.open(str(where), Path(pointer) if pointer else None)
    registry = Registry.load(where)
    registry.pointer_path = Path(pointer) if pointer else None
    return registry


@contextmanager
def command_lock(where: str | Path) -> Iterator[None]:
    """:func:`locked` for a file; a database registry's own lock for a URL."""
    if "://" in str(where):
        from mlcycle.retrain.registry_sql import command_lock as database_lock

        with database_lock(str(where)):
            yield
        return
    with locked(Path(where)):
        yield


@contextmanager
def locked(registry_path: Path) -> Iterator[None]:
    """Hold ``<registry>.lock`` for the whole command: two retrain.py (a cron job and a person)
    must not decide against the same champion at once."""
    lock = Path(f"{registry_path}.lock")
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        handle = lock.open("w")
    except OSError as exc:
        raise UserError(f"cannot create registry lock '{lock}': {exc.strerror}") from exc
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise UserError(
                f"another retrain.py is using registry '{registry_path}' (lock '{lock}'); "
                "wait for it to finish"
            ) from exc
        yield


def describe(registry: Registry) -> list[str]:
    """One line per version, for ``--list``."""
    lines = []
    for v in registry.versions:
        mark = "*" if v["version"] == registry.data.get("champion") else " "
        metric = v.get("metric")
        value = (v.get("metrics") or {}).get(metric) if metric else None
        shown = f"{metric} {value:.4f}" if isinstance(value, float) else "-"
        lines.append(
            f"{mark} v{v['version']:<3} {v.get('decision', '?'):<9} {shown:<14} {v['run']}"
            f"  ({v.get('reason', '')})"
        )
    return lines or ["(no versions)"]
