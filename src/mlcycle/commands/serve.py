"""Serve an exported model over HTTP: ``mlcycle serve --run RUN``.

    mlcycle serve --run RUN [--host 127.0.0.1 --port 8000] [--token SECRET]
    mlcycle serve --model RUN/export/model.onnx --db postgresql://...
    mlcycle serve --champion runs/champion   # follows retrain.py's champion pointer
    mlcycle serve --registry postgresql+psycopg://host/db   # follows the registry's champion
    mlcycle serve --run RUN --workers auto   # one process per core behind one port

FastAPI on uvicorn, ONNX Runtime, micro-batching; every answered image is a row of the
prediction store (SQLite RUN/serving/predictions.db by default). SIGTERM or Ctrl-C: in-flight
requests finish, then the store is drained. See docs/serving.md.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from jsonargparse import Namespace

from mlcycle.commands.guard import main_guard
from mlcycle.commands.parser import CommandParser
from mlcycle.core.errors import UserError

if TYPE_CHECKING:
    from mlcycle.serve.reload import Champion

TOKEN_ENV = "MLCYCLE_SERVE_TOKEN"
WHERE = ("run", "model", "champion", "registry")
WORKER_ARGV = "MLCYCLE_SERVE_ARGV"  # the command line, for the factory in each worker process
FACTORY = "mlcycle.commands.serve:worker_app"


def parser() -> CommandParser:
    p = CommandParser("serve", __doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path | None, default=None, help="a run directory: serves RUN/export/model.onnx")  # fmt: skip
    p.add_argument("--model", type=Path | None, default=None, help="a model.onnx with its model.json beside it")  # fmt: skip
    p.add_argument("--champion", type=Path | None, default=None, help="retrain.py's champion pointer: serves the run it names, reloads when it changes or on SIGHUP")  # fmt: skip
    p.add_argument("--registry", type=str | None, default=None, help="retrain.py's registry (a JSON file or a database URL): serves its champion's export, reloads when the champion changes or on SIGHUP")  # fmt: skip
    p.add_argument("--reload_interval", type=float, default=2.0, help="how often --champion or --registry is read, s (2)")  # fmt: skip
    p.add_argument("--host", type=str, default="127.0.0.1", help="address to listen on (127.0.0.1)")  # fmt: skip
    p.add_argument("--port", type=int, default=8000, help="port (8000; 0 picks a free one)")
    p.add_argument("--db", type=str | None, default=None, help="SQLAlchemy URL of the prediction store (default: SQLite file)")  # fmt: skip
    p.add_argument("--store_dir", type=Path | None, default=None, help="folder of predictions.db (RUN/serving)")  # fmt: skip
    p.add_argument("--max_batch", type=int, default=32, help="images per model call (32)")
    p.add_argument("--max_wait_ms", type=float, default=5.0, help="wait to fill a batch (5)")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (1)")
    p.add_argument("--max_bytes", type=int, default=20_000_000, help="request body limit (20 MB)")  # fmt: skip
    p.add_argument("--max_images", type=int, default=64, help="images per request (64)")
    p.add_argument("--token", type=str | None, default=None, help=f"bearer token for predict and feedback (or ${TOKEN_ENV})")  # fmt: skip
    p.add_argument("--top_k", type=int, default=3, help="classes listed per image (3)")
    p.add_argument("--min_score", type=float, default=0.5, help="box outputs: lowest score (0.5)")  # fmt: skip
    p.add_argument("--workers", type=str, default="1", help="server processes behind the port, or 'auto' (one per core); 1")  # fmt: skip
    p.add_argument("--log_level", type=Literal["debug", "info", "warning", "error"], default="info")  # fmt: skip
    return p


def check(args: Namespace) -> None:
    given = [f"--{name}" for name in WHERE if args[name] is not None]
    if len(given) != 1:
        told = f"not {' and '.join(given)}" if given else "none was given"
        raise UserError(f"give one of --run, --model, --champion or --registry ({told})")
    for name in ("max_batch", "threads", "max_bytes", "max_images", "top_k"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1")
    if not 0 <= args.max_wait_ms <= 1000:
        raise UserError("--max-wait-ms must be in [0, 1000]")
    if not 0 <= args.min_score <= 1:
        raise UserError("--min-score must be in [0, 1]")
    if not 0 <= args.port <= 65535:
        raise UserError("--port must be in [0, 65535]")
    if args.reload_interval <= 0:
        raise UserError("--reload-interval must be positive")
    workers_count(args.workers)


def workers_count(value: str) -> int:
    """``--workers``: a whole number of at least 1, or ``auto`` (the cores)."""
    if value == "auto":
        return os.cpu_count() or 1
    if not value.isdigit() or int(value) < 1:
        raise UserError(f"--workers must be a whole number of at least 1 or 'auto', not '{value}'")
    return int(value)


def follow(args: Namespace) -> tuple[Callable[[], Champion] | None, Path | None]:
    """What tells the champion (a pointer, a registry; None: a fixed model), and the folder the
    default store goes beside."""
    from mlcycle.serve.reload import pointer_champion

    if args.champion is not None:
        return pointer_champion(args.champion), args.champion.parent
    if args.registry is not None:
        from mlcycle.retrain.follow import registry_champion, serving_folder

        return registry_champion(args.registry), serving_folder(args.registry)
    return None, None


def prepare(args: Namespace):
    """The first model (and the champion watcher) and the opened store."""
    from mlcycle.serve.model import run_model
    from mlcycle.serve.server import default_store_dir, first_model, open_store

    locate, beside = follow(args)
    model, watcher = first_model(
        args.model or (run_model(args.run) if args.run else None),
        locate,
        args.reload_interval,
        threads=args.threads,
        top_k=args.top_k,
        min_score=args.min_score,
    )
    folder = args.store_dir or default_store_dir(args.run, beside, model.path)
    return model, watcher, open_store(args.db, folder)


def build(args: Namespace):
    """The app of one server process, its store and its champion watcher (not started)."""
    from mlcycle.serve.app import create_app
    from mlcycle.serve.service import Settings

    model, watcher, store = prepare(args)
    settings = Settings(
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        max_bytes=args.max_bytes,
        max_images=args.max_images,
        token=args.token or os.environ.get(TOKEN_ENV) or None,
    )
    app = create_app(model, store, settings)
    if watcher is not None:
        watcher.swap = app.state.service.swap
    return app, model, store, watcher


def worker_app():
    """The app of one of ``--workers`` processes (uvicorn calls it in each): the command line
    is read again from the environment the parent set; the champion is polled per process."""
    args = parser().parse(json.loads(os.environ[WORKER_ARGV]))
    app, _model, _store, watcher = build(args)
    if watcher is not None:
        watcher.start()  # stopped with the process (a daemon thread); SIGHUP restarts workers
    return app


def serve_workers(args: Namespace, argv: list[str], workers: int) -> None:
    """``workers`` processes on one socket; the parent checks the model and creates the store's
    tables first, so a bad model or store is one line here, not N tracebacks."""
    from mlcycle.serve.server import listen, run_workers, worker_config

    model, _watcher, store = prepare(args)
    url = store.engine.url.render_as_string(hide_password=True)
    store.close()
    config = worker_config(FACTORY, workers, args.log_level)
    sock = listen(args.host, args.port)
    host, port = sock.getsockname()[:2]
    logging.getLogger("uvicorn.error").info(
        "serving %s model %s (%s) on http://%s:%d with %d workers; store %s",
        *(model.task, model.path, model.version[:12], host, port, workers, url),
    )
    del model
    os.environ[WORKER_ARGV] = json.dumps(argv)
    run_workers(config, sock)


@main_guard
def main(argv: list[str] | None = None) -> None:
    args = parser().parse(argv)
    check(args)
    workers = workers_count(args.workers)
    if workers > 1:
        serve_workers(args, sys.argv[1:] if argv is None else list(argv), workers)
        return
    from mlcycle.serve.server import listen, run_server, server_config

    app, model, store, watcher = build(args)
    config = server_config(app, args.log_level)
    sock = listen(args.host, args.port)
    host, port = sock.getsockname()[:2]
    logging.getLogger("uvicorn.error").info(
        "serving %s model %s (%s) on http://%s:%d; store %s",
        model.task,
        model.path,
        model.version[:12],
        host,
        port,
        store.engine.url.render_as_string(hide_password=True),
    )
    if watcher is not None:
        signal.signal(signal.SIGHUP, lambda *_: watcher.request())
        watcher.start()
    try:
        run_server(config, sock)
    finally:
        if watcher is not None:
            watcher.stop()
        store.close()  # the lifespan drained it already; this is for a failed start
