"""The prediction store: every answered image (or table row) is a row, written through
SQLAlchemy. An image keeps its size, mode and statistics; a table row keeps its features as
JSON in ``inputs`` (``{column: value}``, numbers as numbers, missing as null) and those
columns stay null.

SQLite by default (a file), PostgreSQL (``postgresql+psycopg://user@host/db``, shared by
several servers) or any SQLAlchemy URL. Writes are queued and flushed in batches by one
background thread, off the request path; :meth:`PredictionStore.close` drains the queue, so a
clean shutdown loses no row.

A database that stops answering (a restart, a network cut) does not stop the server: the rows
are kept in memory (up to ``buffer_rows``) and written when it answers again, retried every
``RETRY_SECONDS``; :attr:`PredictionStore.recording` is False meanwhile. Rows that cannot be
kept (the buffer is full, a row the database refuses, a database still away at shutdown) are
counted in :attr:`PredictionStore.lost`, never dropped unseen.
"""

from __future__ import annotations

import collections
import json
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from mlcycle.core.errors import UserError
from mlcycle.edge.table_rows import inputs_json, inputs_sha256
from mlcycle.serve.stats import STATS

METADATA = sa.MetaData()
PREDICTIONS = sa.Table(
    "predictions",
    METADATA,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("time", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("model_version", sa.String(64), nullable=False, index=True),
    sa.Column("source", sa.String(16), nullable=False),  # api, batch, predict
    sa.Column("input_name", sa.Text),
    sa.Column("input_sha256", sa.String(64), nullable=False, index=True),
    sa.Column("width", sa.Integer),
    sa.Column("height", sa.Integer),
    sa.Column("mode", sa.String(16)),
    *(sa.Column(name, sa.Float) for name in STATS),
    sa.Column("predicted", sa.Text),  # what the output form keeps (Form.stored): a class, ...
    sa.Column("confidence", sa.Float),
    sa.Column("top_k", sa.Text),  # JSON
    sa.Column("latency_ms", sa.Float),
    sa.Column("inputs", sa.Text),  # a table row's features, JSON (null for images)
)
FEEDBACK = sa.Table(
    "feedback",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "prediction_id", sa.String(36), sa.ForeignKey("predictions.id"), nullable=False, index=True
    ),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("time", sa.DateTime(timezone=True), nullable=False),
)
COLUMNS = [c.name for c in PREDICTIONS.columns]
FLUSH = "__flush__"  # a queue item asking the writer to signal once what came before is written
CONNECT_TIMEOUT_S = 5  # a database server that does not answer: give up connecting after this
RETRY_SECONDS = 1.0  # while the database is away, try the buffered rows again this often


def default_url(folder: str | Path) -> str:
    return f"sqlite:///{Path(folder) / 'predictions.db'}"


def shown_url(url: str) -> str:
    """``url`` as it may be printed: its password hidden."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url.rpartition("@")[2]


def create_engine(url: str) -> sa.Engine:
    """An engine for ``url`` (not connected yet); a database server gets CONNECT_TIMEOUT_S to
    answer a connection, so a wrong host fails in seconds instead of hanging."""
    parsed = sa.engine.make_url(url)
    server = parsed.get_backend_name() in ("postgresql", "mysql", "mariadb")
    connect_args = {"connect_timeout": CONNECT_TIMEOUT_S} if server else {}
    return sa.create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)


def unreachable(exc: BaseException) -> bool:
    """The database did not answer (down, restarting, locked): the write may succeed later."""
    lost_connection = getattr(exc, "connection_invalidated", False)
    return isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError) or lost_connection


def one_line(exc: BaseException) -> str:
    """The first line of a database error (drivers add SQL and hints on further lines)."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return " ".join(text.splitlines()[0].split())[:200] if text else type(exc).__name__


def engine_for(url: str) -> sa.Engine:
    """An engine with the tables created; SQLite in WAL mode so readers do not block the writer.
    A URL SQLAlchemy cannot use or a database that does not answer is a :class:`UserError`
    naming the URL (without its password)."""
    try:
        engine = create_engine(url)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise UserError(f"prediction store '{shown_url(url)}': {one_line(exc)}") from exc
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()

    try:
        created_once(engine, lambda: (METADATA.create_all(engine), add_missing_columns(engine)))
    except sa.exc.SQLAlchemyError as exc:
        engine.dispose()
        raise UserError(
            f"cannot reach the prediction store '{shown_url(url)}': {one_line(exc)}"
        ) from exc
    return engine


def created_once(engine: sa.Engine, create: Callable[[], Any], tries: int = 3) -> None:
    """``create()`` the tables; several processes creating them at once (servers started
    together): the losers' clash (a duplicate type, table or column) is tried again once the
    winner's tables are committed."""
    for attempt in range(tries):
        try:
            create()
            return
        except (sa.exc.IntegrityError, sa.exc.ProgrammingError):
            if attempt == tries - 1:
                raise
            time.sleep(0.5 + attempt)


def add_missing_columns(engine: sa.Engine) -> None:
    """Columns added since a store was created (``inputs``), added to it: nullable, so its
    rows keep their values and read as before."""
    have = {c["name"] for c in sa.inspect(engine).get_columns(PREDICTIONS.name)}
    with engine.begin() as connection:
        for column in PREDICTIONS.columns:
            if column.name not in have:
                kind = column.type.compile(dialect=engine.dialect)
                connection.execute(
                    sa.text(f"ALTER TABLE {PREDICTIONS.name} ADD COLUMN {column.name} {kind}")
                )


def new_id() -> str:
    return str(uuid.uuid4())


def now() -> datetime:
    return datetime.now(timezone.utc)


def prediction_row(**values: Any) -> dict[str, Any]:
    """A predictions row: every column present (None when not given); ``top_k`` as JSON."""
    row = {name: values.get(name) for name in COLUMNS}
    row["id"] = row["id"] or new_id()
    row["time"] = row["time"] or now()
    if row["top_k"] is not None and not isinstance(row["top_k"], str):
        row["top_k"] = json.dumps(row["top_k"])
    return row


def features_row(form: Any, result: dict[str, Any], inputs: dict[str, Any], **values: Any) -> dict:
    """The predictions row of one scored table row: its features as canonical JSON
    (``inputs``) and their sha256, and what the output ``form`` keeps of ``result``."""
    predicted, confidence, top_k = form.stored(result)
    return prediction_row(
        inputs=inputs_json(inputs),
        input_sha256=inputs_sha256(inputs),
        predicted=predicted,
        confidence=confidence,
        top_k=top_k,
        **values,
    )


class PredictionStore:
    """Queued, batched writes of prediction rows; synchronous feedback and reads."""

    def __init__(
        self,
        url: str,
        batch_size: int = 256,
        flush_seconds: float = 0.2,
        buffer_rows: int = 100_000,
    ) -> None:
        self.url = url
        self.engine = engine_for(url)
        self.batch_size, self.flush_seconds = batch_size, flush_seconds
        self.buffer_rows = buffer_rows
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._pending: list[dict[str, Any]] = []  # rows the database did not take yet
        self._retry_at = 0.0
        self.written = 0
        self.lost = 0  # rows never written: refused, over the buffer, or the database away at close
        self.failures = 0  # failed write attempts
        self.recording = True  # False while the database does not answer
        self.errors: collections.deque[str] = collections.deque(maxlen=50)  # the latest ones

    # --- writing ------------------------------------------------------------------------------

    def start(self) -> PredictionStore:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="prediction-store", daemon=True)
            self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        """The background writer is running."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def buffered(self) -> int:
        """Rows held in memory because the database did not answer."""
        return len(self._pending)

    def add(self, row: dict[str, Any]) -> None:
        """Queue one row (see :func:`prediction_row`); never blocks the caller on the database."""
        self._queue.put(row)

    def add_many(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self._queue.put(row)

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self.flush_seconds)
            except queue.Empty:
                self._write([])  # the buffered rows, when their retry is due
                continue
            batch, flushed, stop = [], None, False
            while True:
                if item is None:
                    stop = True
                    break
                if FLUSH in item:
                    flushed = item[FLUSH]
                    break
                batch.append(item)
                if len(batch) >= self.batch_size:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            self._write(batch, force=stop or flushed is not None)
            if flushed is not None:
                flushed.set()
            if stop:
                return

    def _write(self, batch: list[dict[str, Any]], force: bool = False) -> None:
        """Write ``batch`` after the rows buffered before it. While the database is away the
        rows are buffered and tried every RETRY_SECONDS (at once when ``force``)."""
        self._pending.extend(batch)
        waiting = not self.recording and time.monotonic() < self._retry_at
        if not self._pending or (waiting and not force):
            self._trim()
            return
        rows, self._pending = self._pending, []
        try:
            with self.engine.begin() as connection:
                connection.execute(PREDICTIONS.insert(), rows)
            self.written += len(rows)
            self.recording = True
        except Exception as exc:  # the server must keep answering; the error is reported
            self.failures += 1
            self.errors.append(f"{type(exc).__name__}: {one_line(exc)}")
            if unreachable(exc):
                self.recording = False
                self._retry_at = time.monotonic() + RETRY_SECONDS
                self._pending = rows
                self._trim()
            else:  # the database refused these rows: they cannot be written later either
                self.lost += len(rows)

    def _trim(self) -> None:
        """Keep at most ``buffer_rows`` buffered rows (the newest); count the rest as lost."""
        over = len(self._pending) - self.buffer_rows
        if over > 0:
            self.lost += over
            del self._pending[:over]

    def flush(self, timeout: float = 30.0) -> None:
        """Write everything queued so far (the writer keeps running)."""
        if self._thread is None:
            rows = []
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if item is not None:
                    rows.append(item)
            if rows:
                self._write(rows, force=True)
            return
        done = threading.Event()
        self._queue.put({FLUSH: done})
        done.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Drain the queue and stop the writer."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None
        else:
            self.flush()
        self.lost += len(self._pending)  # the database is still away: say so
        self._pending = []
        self.engine.dispose()

    # --- feedback and reads ---------------------------------------------------------------------

    def add_feedback(self, prediction_id: str, label: str) -> bool:
        """Record the true label of a prediction; False when the prediction is unknown."""
        with self.engine.begin() as connection:
            known = connection.execute(
                sa.select(PREDICTIONS.c.id).where(PREDICTIONS.c.id == prediction_id)
            ).first()
            if known is None:
                return False
            connection.execute(
                FEEDBACK.insert().values(prediction_id=prediction_id, label=label, time=now())
            )
        return True

    def count(self, model_version: str | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(PREDICTIONS)
        if model_version:
            query = query.where(PREDICTIONS.c.model_version == model_version)
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar_one())

    def predicted_hashes(self, model_version: str, hashes: list[str]) -> set[str]:
        """Which of ``hashes`` this model version already predicted (batch jobs skip them)."""
        found: set[str] = set()
        with self.engine.connect() as connection:
            for start in range(0, len(hashes), 500):
                chunk = hashes[start : start + 500]
                query = sa.select(PREDICTIONS.c.input_sha256).where(
                    PREDICTIONS.c.model_version == model_version,
                    PREDICTIONS.c.input_sha256.in_(chunk),
                )
                found.update(r[0] for r in connection.execute(query))
        return found

    def rows(self, since: datetime | None = None, until: datetime | None = None) -> list[dict]:
        """Prediction rows joined with their latest feedback label (``label``), oldest first."""
        label = (
            sa.select(FEEDBACK.c.label)
            .where(FEEDBACK.c.prediction_id == PREDICTIONS.c.id)
            .order_by(FEEDBACK.c.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        query = sa.select(PREDICTIONS, label.label("label")).order_by(PREDICTIONS.c.time)
        if since is not None:
            query = query.where(PREDICTIONS.c.time >= since)
        if until is not None:
            query = query.where(PREDICTIONS.c.time < until)
        with self.engine.connect() as connection:
            return [dict(r._mapping) for r in connection.execute(query)]
