"""A real model server on a loopback port for the serving tests, and a small HTTP client."""

from __future__ import annotations

import base64
import http.client
import io
import json
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn
from PIL import Image

from mlcycle.serve.app import create_app
from mlcycle.serve.model import ServedModel
from mlcycle.serve.service import Settings
from mlcycle.serve.store import PredictionStore, default_url


def listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


class Running:
    """uvicorn serving ``app`` in a thread (``with Running(app) as server``); leaving the block
    stops it as SIGTERM would: in-flight requests finish, then the lifespan drains the store."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.sock = listening_socket()
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> Running:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    @property
    def service(self):
        return self.app.state.service

    def client(self, token: str | None = None) -> Client:
        return Client(self.port, token)


def start(
    model_path: Path, store_dir: Path, **settings: Any
) -> tuple[Running, ServedModel, PredictionStore]:
    """A server for ``model_path`` with its SQLite store in ``store_dir``."""
    top_k = settings.pop("top_k", 3)
    model = ServedModel(
        model_path, threads=1, top_k=top_k, min_score=settings.pop("min_score", 0.5)
    )
    store_dir.mkdir(parents=True, exist_ok=True)
    store = PredictionStore(default_url(store_dir))
    return Running(create_app(model, store, Settings(**settings))), model, store


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """http.client over one keep-alive connection, reopened after the server closes it."""

    def __init__(self, port: int, token: str | None = None) -> None:
        self.port, self.token = port, token
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> Response:
        headers = dict(headers or {})
        if self.token is not None:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body, headers)
                response = self.conn.getresponse()
                data = response.read()
                break
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt:
                    raise
        if response.will_close:
            self.conn.close()
        return Response(response.status, {k.lower(): v for k, v in response.getheaders()}, data)

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def post_json(self, path: str, payload: Any) -> Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return self.request("POST", path, body, {"Content-Type": "application/json"})

    def predict_files(self, files: list[tuple[str, bytes]], field: str = "files") -> Response:
        body, content_type = multipart(files, field)
        return self.request("POST", "/v1/predict", body, {"Content-Type": content_type})

    def predict_json(self, files: list[tuple[str, bytes]]) -> Response:
        images = [{"name": n, "data": base64.b64encode(d).decode()} for n, d in files]
        return self.post_json("/v1/predict", {"images": images})


def multipart(files: list[tuple[str, bytes]], field: str = "files") -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = b""
    for name, data in files:
        body += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
            f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        body += data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def val_uploads(run: Path, count: int = 6) -> list[tuple[str, bytes]]:
    """The first validation images of a run, as uploaded files (name, bytes)."""
    rows = [line.split(",") for line in (run / "splits.csv").read_text().splitlines()[1:]]
    paths = [Path(path) for path, _, split in rows if split == "val"][:count]
    return [(p.name, p.read_bytes()) for p in paths]


def png(array: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    image = Image.fromarray(array)
    (image.convert(mode) if mode else image).save(buf, format="PNG")
    return buf.getvalue()


def wait_ready(port: int, proc: subprocess.Popen, within: float = 60) -> None:
    """Until the server process on ``port`` answers ``/ready`` with 200 (it must not exit)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            if Client(port).get("/ready").status == 200:
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"the server on port {port} did not become ready in {within} s")


def post_until(port: int, body: bytes, content_type: str, stop: threading.Event) -> int:
    """POST ``body`` to ``/v1/predict`` on one connection until ``stop`` (or the server stops
    listening); the images answered with a class."""
    client, count = Client(port), 0
    while not stop.is_set():
        try:
            response = client.request("POST", "/v1/predict", body, {"Content-Type": content_type})
        except OSError:
            break  # the server stopped listening
        if response.status == 200:
            count += sum("class" in r for r in response.json()["results"])
    return count
