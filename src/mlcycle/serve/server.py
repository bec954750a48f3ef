"""Running the server: the prediction store it writes, the listening socket, the first model
(or the champion watcher) and uvicorn until SIGTERM. ``mlcycle.commands.serve`` wires them from
the command line."""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from mlcycle.core.errors import UserError
from mlcycle.edge.model import UsageError, read_meta
from mlcycle.serve.metrics import shared_metrics
from mlcycle.serve.model import ServedModel
from mlcycle.serve.reload import Champion, ChampionWatcher, load_champion
from mlcycle.serve.store import PredictionStore, default_url, one_line, shown_url
from mlcycle.serve.table import ServedTable


def default_store_dir(run: Path | None, beside: Path | None, model_path: Path) -> Path:
    """RUN/serving; a followed champion: ``beside/serving`` (the pointer's or the registry's
    folder: one store for every champion); else beside the model."""
    if run:
        return run / "serving"
    if beside:
        return beside / "serving"
    return model_path.parent


def open_store(url: str | None, folder: Path) -> PredictionStore:
    """The store at ``url``, else predictions.db in ``folder`` (created)."""
    if url is None:
        folder.mkdir(parents=True, exist_ok=True)
        url = default_url(folder)
    try:
        return PredictionStore(url)
    except UserError:  # a bad URL, a missing driver, a database that does not answer
        raise
    except Exception as exc:
        raise UserError(
            f"cannot open the prediction store '{shown_url(url)}': {one_line(exc)}"
        ) from exc


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


# Served models by model.json's input.kind; any other kind is served as images.
SERVED: dict[str, type[Any]] = {"table": ServedTable}


def load_served(path: Path, **options: Any) -> Any:
    """The served model of the file at ``path``, by the input kind its model.json declares."""
    try:
        kind = (read_meta(path).get("input") or {}).get("kind")
    except (UsageError, OSError, ValueError):
        kind = None  # ServedModel names what is wrong with the file
    return SERVED.get(str(kind), ServedModel)(path, **options)


def first_model(
    model_path: Path | None,
    locate: Callable[[], Champion] | None,
    interval: float,
    **options: Any,
) -> tuple[ServedModel, ChampionWatcher | None]:
    """The model to serve at start-up (``options``: ServedModel's), and the champion watcher
    when the champion is followed (``locate``: a pointer's or a registry's)."""

    def load(path: Path) -> ServedModel:
        return load_served(path, **options)

    if locate is None:
        assert model_path is not None, "a model or a champion to follow"
        return load(model_path), None
    watcher = ChampionWatcher(
        locate, lambda champion: load_champion(champion, load), lambda _model: None, interval
    )
    return watcher.first(), watcher


def server_config(app: Any, log_level: str, **options: Any) -> uvicorn.Config:
    """uvicorn's settings (creating them sets up its logging, which this module logs to)."""
    return uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,  # one log line per request costs more than the prediction
        timeout_graceful_shutdown=30,  # in-flight requests get this long after SIGTERM
        lifespan="on",
        **options,
    )


def worker_config(factory: str, workers: int, log_level: str) -> uvicorn.Config:
    """uvicorn's settings for ``workers`` processes, each building its app with ``factory``
    (an import string: the processes are spawned, nothing is inherited but the environment)."""
    return server_config(factory, log_level, factory=True, workers=workers)


def run_workers(config: uvicorn.Config, sock: socket.socket) -> None:
    """uvicorn's process supervisor on ``sock`` until SIGTERM or Ctrl-C: it sends SIGTERM to
    every worker, each drains its batcher and store, then it returns. A worker that dies is
    replaced; SIGHUP replaces them one by one (a champion reload)."""
    with shared_metrics():
        Multiprocess(config, sockets=[sock]).run()


def run_server(config: uvicorn.Config, sock: socket.socket) -> None:
    """uvicorn on ``sock`` until SIGTERM or Ctrl-C, then its graceful shutdown."""
    # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown; a no-op handler then lets
    # main return (exit 0) instead of the process dying before the final close in main.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    uvicorn.Server(config).run(sockets=[sock])
