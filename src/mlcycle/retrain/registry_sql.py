"""The model registry in a database (``--registry sqlite:///...`` or
``postgresql+psycopg://...``): the same versions, lineage and events as the JSON file, in three
tables, so retrain.py on several machines share one registry.

Every change is one transaction that first locks the registry's one ``state`` row (``SELECT ...
FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so two processes promoting at once
are serialised: each version gets its own number (the primary key refuses a duplicate) and
each promotion lands in the lineage, none lost. The whole command also holds a lock, as the
JSON file's ``.lock``: a PostgreSQL advisory lock (released when the process dies) or the
SQLite file's ``.lock``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from mlcycle.core.errors import UserError
from mlcycle.retrain.registry import FORMAT_VERSION, Registry, locked, now
from mlcycle.serve.store import create_engine, created_once, one_line, shown_url

METADATA = sa.MetaData()
STATE = sa.Table(
    "registry_state",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("champion", sa.Integer),
    sa.Column("lineage", sa.JSON, nullable=False),
    sa.Column("format_version", sa.Integer, nullable=False),
)
VERSIONS = sa.Table(
    "registry_versions",
    METADATA,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("run", sa.Text, nullable=False, index=True),
    sa.Column("entry", sa.JSON, nullable=False),
)
EVENTS = sa.Table(
    "registry_events",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("time", sa.String(40), nullable=False),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("entry", sa.JSON, nullable=False),
)
ADVISORY_KEY = 0x6D6C6379  # "mlcy": the command lock of a registry on PostgreSQL
DEFAULT_POINTER = Path("runs/champion")


def open_engine(url: str) -> sa.Engine:
    """An engine with the registry's tables; one line naming the URL when it cannot be used."""
    shown = shown_url(url)
    try:
        engine = create_engine(url)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise UserError(f"--registry '{shown}': {one_line(exc)}") from exc
    if engine.dialect.name not in ("sqlite", "postgresql"):
        raise UserError(f"--registry '{shown}': a registry runs on sqlite or postgresql")
    if engine.dialect.name == "sqlite":
        if not engine.url.database or engine.url.database == ":memory:":
            raise UserError(f"--registry '{shown}': give a file (sqlite:///path/registry.db)")
        Path(engine.url.database).parent.mkdir(parents=True, exist_ok=True)
        _immediate_transactions(engine)
    try:
        _create(engine)
    except sa.exc.SQLAlchemyError as exc:
        engine.dispose()
        raise UserError(f"cannot reach the registry '{shown}': {one_line(exc)}") from exc
    return engine


def _immediate_transactions(engine: sa.Engine) -> None:
    """SQLite: every transaction takes the write lock at BEGIN (waiting up to 30 s), so a
    read-then-write is never refused half way by another writer."""

    @sa.event.listens_for(engine, "connect")
    def _connect(connection: Any, _record: Any) -> None:
        connection.isolation_level = None  # SQLAlchemy emits BEGIN below, not the driver
        connection.execute("PRAGMA busy_timeout=30000")

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _create(engine: sa.Engine) -> None:
    """The tables and the one state row (two processes creating them at once: one wins)."""

    def create() -> None:
        METADATA.create_all(engine)
        with engine.begin() as connection:
            if connection.execute(sa.select(STATE.c.id)).first() is None:
                connection.execute(
                    STATE.insert().values(
                        id=1, champion=None, lineage=[], format_version=FORMAT_VERSION
                    )
                )

    created_once(engine, create)


class SqlRegistry(Registry):
    """:class:`~mlcycle.retrain.registry.Registry` whose every change is a transaction; the
    in-memory ``data`` follows what the database holds after each one."""

    def __init__(self, engine: sa.Engine, url: str, pointer: Path | None) -> None:
        super().__init__(Path(), {"format_version": FORMAT_VERSION, "champion": None})
        self.path = shown_url(url)  # what messages name
        self.engine = engine
        sqlite = engine.dialect.name == "sqlite"
        beside = Path(engine.url.database or "").parent / "champion" if sqlite else None
        self.pointer_path = pointer or beside or DEFAULT_POINTER
        self.data.update(lineage=[], versions=[], events=[])
        self.saved: dict[int, str] = {}  # version -> its entry as last written
        with self.transaction() as connection:
            self._catch_up(connection)

    @classmethod
    def open(cls, url: str, pointer: Path | None = None) -> SqlRegistry:
        return cls(open_engine(url), url, pointer)

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """One transaction holding the state row; the in-memory lineage follows it."""
        try:
            with self.engine.begin() as connection:
                state = connection.execute(
                    sa.select(STATE).where(STATE.c.id == 1).with_for_update()
                ).one()
                self.data["champion"], self.data["lineage"] = state.champion, list(state.lineage)
                yield connection
        except sa.exc.OperationalError as exc:
            raise UserError(f"registry '{self.path}' failed: {one_line(exc)}") from exc

    def _catch_up(self, connection: sa.Connection) -> None:
        """Versions and events other processes added since this one last looked."""
        rows = connection.execute(
            sa.select(VERSIONS.c.version, VERSIONS.c.entry)
            .where(VERSIONS.c.version > len(self.versions))
            .order_by(VERSIONS.c.version)
        )
        for number, entry in rows:
            self.versions.append(entry)
            self.saved[number] = json.dumps(entry, sort_keys=True)
        events = connection.execute(
            sa.select(EVENTS.c.entry).order_by(EVENTS.c.id).offset(len(self.data["events"]))
        )
        self.data["events"].extend(entry for (entry,) in events)

    def _write_state(self, connection: sa.Connection) -> None:
        connection.execute(
            STATE.update()
            .where(STATE.c.id == 1)
            .values(champion=self.data["champion"], lineage=self.data["lineage"])
        )

    def _write_changed(self, connection: sa.Connection) -> None:
        """Versions whose entry was changed in memory (``rolled_back``, a new export)."""
        for entry in self.versions:
            text = json.dumps(entry, sort_keys=True)
            if self.saved.get(entry["version"]) != text:
                connection.execute(
                    VERSIONS.update()
                    .where(VERSIONS.c.version == entry["version"])
                    .values(entry=entry)
                )
                self.saved[entry["version"]] = text

    def save(self) -> None:
        with self.transaction() as connection:
            self._write_changed(connection)
            self._catch_up(connection)

    def add_version(self, run: Path, **fields: Any) -> dict[str, Any]:
        with self.transaction() as connection:
            self._catch_up(connection)
            number = (connection.execute(sa.select(sa.func.max(VERSIONS.c.version))).scalar()) or 0
            entry = {"version": number + 1, "run": str(Path(run).resolve())}
            entry.update(registered=now(), **fields)
            connection.execute(
                VERSIONS.insert().values(version=number + 1, run=entry["run"], entry=entry)
            )
        self.versions.append(entry)
        self.saved[entry["version"]] = json.dumps(entry, sort_keys=True)
        return entry

    def event(self, kind: str, **fields: Any) -> None:
        with self.transaction() as connection:
            self._add_event(connection, kind, **fields)

    def _add_event(self, connection: sa.Connection, kind: str, **fields: Any) -> None:
        self._catch_up(connection)
        entry = {"time": now(), "event": kind, **fields}
        connection.execute(EVENTS.insert().values(time=entry["time"], event=kind, entry=entry))
        self.data["events"].append(entry)

    def promote(self, number: int, reason: str) -> None:
        with self.transaction() as connection:
            previous = self.data["champion"]
            self.data["lineage"].append(number)
            self.data["champion"] = number
            self._write_state(connection)
            self._add_event(connection, "promote", version=number, previous=previous, reason=reason)

    def rollback(self, reason: str) -> tuple[dict[str, Any], dict[str, Any]]:
        with self.transaction() as connection:
            self._catch_up(connection)
            dropped, restored = self.step_back()
            self._write_state(connection)
            self._write_changed(connection)
            self._add_event(
                connection, "rollback", version=restored["version"],
                previous=dropped["version"], reason=reason,
            )  # fmt: skip
        return dropped, restored

    def pointer(self) -> Path:
        return self.pointer_path


@contextmanager
def command_lock(url: str) -> Iterator[None]:
    """Hold the registry for the whole command (a second retrain.py is refused): a PostgreSQL
    advisory lock on a connection of its own, or the SQLite file's ``.lock``."""
    engine = open_engine(url)
    try:
        if engine.dialect.name == "sqlite":
            with locked(Path(engine.url.database)):
                yield
            return
        with engine.connect() as connection:
            got = connection.execute(sa.select(sa.func.pg_try_advisory_lock(ADVISORY_KEY)))
            if not got.scalar():
                raise UserError(
                    f"another retrain.py is using registry '{shown_url(url)}'; wait for it to finish"
                )
            try:
                yield
            finally:
                connection.execute(sa.select(sa.func.pg_advisory_unlock(ADVISORY_KEY)))
    finally:
        engine.dispose()
