"""Serve an exported model over HTTP: ``python scripts/serve.py --run RUN``.

    python scripts/serve.py --run RUN [--host 127.0.0.1 --port 8000] [--token SECRET]
    python scripts/serve.py --model RUN/export/model.onnx --db postgresql://...
    python scripts/serve.py --champion runs/champion   # follows retrain.py's champion

FastAPI on uvicorn, ONNX Runtime, micro-batching; every answered image is a row of the
prediction store (SQLite RUN/serving/predictions.db by default). SIGTERM or Ctrl-C: in-flight
requests finish, then the store is drained. See docs/serving.md.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from pathlib import Path

import uvicorn

from mlcycle.commands.guard import ArgParser, main_guard
from mlcycle.core.errors import UserError
from mlcycle.serve.app import create_app
from mlcycle.serve.model import ServedModel
from mlcycle.serve.reload import ChampionWatcher
from mlcycle.serve.service import Settings
from mlcycle.serve.store import PredictionStore, default_url

TOKEN_ENV = "MLCYCLE_SERVE_TOKEN"


def build_parser() -> ArgParser:
    p = ArgParser(prog="serve.py", description=__doc__.split("\n\n")[0])
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--run", type=Path, help="a run directory: serves RUN/export/model.onnx")
    where.add_argument("--model", type=Path, help="a model.onnx with its model.json beside it")
    where.add_argument(
        "--champion",
        type=Path,
        help="retrain.py's champion pointer: serves the run it names, reloads when it changes "
        "or on SIGHUP",
    )
    p.add_argument("--reload-interval", type=float, default=2.0, help="--champion poll, s (2)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (8000; 0 picks a free one)")
    p.add_argument("--db", help="SQLAlchemy URL of the prediction store (default: SQLite file)")
    p.add_argument("--store-dir", type=Path, help="folder of predictions.db (RUN/serving)")
    p.add_argument("--max-batch", type=int, default=32, help="images per model call (32)")
    p.add_argument("--max-wait-ms", type=float, default=5.0, help="wait to fill a batch (5)")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (1)")
    p.add_argument("--max-bytes", type=int, default=20_000_000, help="request body limit (20 MB)")
    p.add_argument("--max-images", type=int, default=64, help="images per request (64)")
    p.add_argument("--token", help=f"bearer token for predict and feedback (or ${TOKEN_ENV})")
    p.add_argument("--top-k", type=int, default=3, help="classes listed per image (3)")
    p.add_argument("--min-score", type=float, default=0.5, help="detection: lowest score (0.5)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return p


def check(args) -> None:
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


def default_store_dir(args, model_path: Path) -> Path:
    """RUN/serving; beside the champion pointer (one store for every champion); else beside
    the model."""
    if args.run:
        return args.run / "serving"
    if args.champion:
        return args.champion.parent / "serving"
    return model_path.parent


def open_store(args, model_path: Path) -> PredictionStore:
    """The store at --db, else predictions.db in --store-dir (see :func:`default_store_dir`)."""
    url = args.db
    if url is None:
        folder = args.store_dir or default_store_dir(args, model_path)
        folder.mkdir(parents=True, exist_ok=True)
        url = default_url(folder)
    try:
        return PredictionStore(url)
    except Exception as exc:  # a bad URL, a missing driver, a database that does not answer
        raise UserError(f"cannot open the prediction store '{url}': {exc}") from exc


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so a taken port is a one-line error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say
    # so, and with Nagle on, keep-alive clients wait ~40 ms for every response.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.listen(2048)
    return sock


def first_model(args) -> tuple[ServedModel, ChampionWatcher | None]:
    """The model to serve at start-up, and the champion watcher when --champion is given."""

    def load(path: Path) -> ServedModel:
        return ServedModel(path, args.threads, args.top_k, args.min_score)

    if not args.champion:
        return load(args.model or args.run / "export" / "model.onnx"), None
    watcher = ChampionWatcher(args.champion, load, lambda _model: None, args.reload_interval)
    return watcher.first(), watcher


def server_config(app, log_level: str) -> uvicorn.Config:
    """uvicorn's settings (creating them sets up its logging, which this module logs to)."""
    return uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,  # one log line per request costs more than the prediction
        timeout_graceful_shutdown=30,  # in-flight requests get this long after SIGTERM
        lifespan="on",
    )


def run_server(config: uvicorn.Config, sock: socket.socket) -> None:
    """uvicorn on ``sock`` until SIGTERM or Ctrl-C, then its graceful shutdown."""
    # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown; a no-op handler then lets
    # main return (exit 0) instead of the process dying before the final close in main.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    uvicorn.Server(config).run(sockets=[sock])


@main_guard
def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    check(args)
    model, watcher = first_model(args)
    store = open_store(args, model.path)
    token = args.token or os.environ.get(TOKEN_ENV) or None
    settings = Settings(
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        max_bytes=args.max_bytes,
        max_images=args.max_images,
        token=token,
    )
    app = create_app(model, store, settings)
    config = server_config(app, args.log_level)
    sock = listen(args.host, args.port)
    host, port = sock.getsockname()[:2]
    logging.getLogger("uvicorn.error").info(
        "serving %s model %s (%s) on http://%s:%d; store %s",
        model.kind,
        model.path,
        model.version[:12],
        host,
        port,
        store.engine.url.render_as_string(hide_password=True),
    )
    if watcher is not None:
        watcher.swap = app.state.service.swap
        signal.signal(signal.SIGHUP, lambda *_: watcher.request())
        watcher.start()
    try:
        run_server(config, sock)
    finally:
        if watcher is not None:
            watcher.stop()
        store.close()  # the lifespan drained it already; this is for a failed start
