"""The registry's champion as a server follows it (``serve.py --registry``): read-only, from the
JSON file or from the database (``sqlite:///...``, ``postgresql+psycopg://...``), so a server on
another machine serves what retrain.py promoted or rolled back to, with no pointer file.

Each read is one query (the state row joined to the champion's version); the champion's model
is the export its version recorded (``onnx``, with ``model.json`` beside it), checked against
the recorded ``model_sha256`` once loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlcycle.core.errors import UserError
from mlcycle.retrain.registry import Registry
from mlcycle.serve.model import MODEL
from mlcycle.serve.reload import Champion

RUN_RETRAIN = "run retrain.py --champion RUN --registry {where} first"


def champion_of_entry(where: str, entry: dict[str, Any] | None) -> Champion:
    """The served model of a registry's champion entry (None: the registry has none)."""
    if entry is None:
        raise UserError(f"registry '{where}' has no champion; {RUN_RETRAIN.format(where=where)}")
    model = Path(entry.get("onnx") or Path(entry["run"]) / MODEL)
    shown = {"registry": where, "version": entry["version"], "run": entry["run"]}
    return Champion(model, shown, entry.get("model_sha256"))


def file_champion(path: Path) -> Callable[[], Champion]:
    """The champion of the JSON registry at ``path``, read again at each call."""

    def read() -> Champion:
        if not path.is_file():
            raise UserError(f"registry '{path}' does not exist; {RUN_RETRAIN.format(where=path)}")
        return champion_of_entry(str(path), Registry.load(path).champion)

    read()  # a problem is the user's at start-up
    return read


def database_champion(url: str) -> Callable[[], Champion]:
    """The champion of the registry in the database at ``url``, one query per call; a database
    that does not answer is one line naming it (PostgreSQL: within the connect timeout)."""
    import sqlalchemy as sa

    from mlcycle.retrain.registry_sql import STATE, VERSIONS
    from mlcycle.serve.store import create_engine, one_line, shown_url

    where = shown_url(url)
    try:
        engine = create_engine(url)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise UserError(f"--registry '{where}': {one_line(exc)}") from exc
    if engine.dialect.name == "sqlite" and not Path(engine.url.database or "").is_file():
        raise UserError(f"registry '{where}' does not exist; {RUN_RETRAIN.format(where=where)}")
    try:
        with engine.connect() as connection:
            created = sa.inspect(connection).has_table(STATE.name)
    except sa.exc.SQLAlchemyError as exc:
        engine.dispose()
        raise UserError(f"cannot reach the registry '{where}': {one_line(exc)}") from exc
    if not created:
        engine.dispose()
        champion_of_entry(where, None)
    query = sa.select(VERSIONS.c.entry).join(STATE, STATE.c.champion == VERSIONS.c.version)

    def read() -> Champion:
        try:
            with engine.connect() as connection:
                entry = connection.execute(query.where(STATE.c.id == 1)).scalar()
        except sa.exc.SQLAlchemyError as exc:
            raise UserError(f"cannot read the registry '{where}': {one_line(exc)}") from exc
        return champion_of_entry(where, entry)

    read()
    return read


def registry_champion(where: str | Path) -> Callable[[], Champion]:
    """What ``serve.py --registry`` polls: a JSON file, or a database URL."""
    if "://" in str(where):
        return database_champion(str(where))
    return file_champion(Path(where))


def serving_folder(where: str | Path) -> Path:
    """Where retrain.py writes the champion pointer by default, so ``serving/`` (the default
    prediction store) sits beside it: the JSON or SQLite file's folder, else ``runs/``."""
    if "://" not in str(where):
        return Path(where).parent
    from mlcycle.retrain.registry_sql import DEFAULT_POINTER
    from mlcycle.serve.store import create_engine

    engine = create_engine(str(where))
    folder = engine.url.database if engine.dialect.name == "sqlite" else None
    engine.dispose()
    return Path(folder).parent if folder else DEFAULT_POINTER.parent
