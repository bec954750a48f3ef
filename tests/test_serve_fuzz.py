"""Fuzzing the model server: hundreds of malformed requests (fixed seed), not one 5xx, and the
server still healthy and answering afterwards."""

from __future__ import annotations

import base64
import json
import socket
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from export_helpers import exported_run
from serve_helpers import Client, Response, multipart, png, start

SEED, ROUNDS = 1234, 40  # 40 rounds of every generator below: well over 500 requests
Request = tuple[str, str, bytes | None, dict[str, str]]


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    return exported_run(tmp_path_factory)


@pytest.fixture(scope="module")
def good_png(exported) -> bytes:
    run = exported[0]
    first = next(line for line in (run / "splits.csv").read_text().splitlines()[1:])
    return Path(first.split(",")[0]).read_bytes()


def text(rng: np.random.Generator, size: int) -> str:
    alphabet = list("abcXYZ019 \"'{}[]:,\\/=+-;\n\t\r\x00é☃")
    return "".join(rng.choice(alphabet, size))


def json_values(rng: np.random.Generator) -> Iterator:
    """Values of the wrong type (or of the right type, but broken) for any JSON field."""
    yield from (None, 1, -1.5, True, [], {}, "", "x" * 2000, [1, 2], {"a": 1}, float("nan"))
    yield float("inf")
    yield text(rng, int(rng.integers(0, 50)))


def gen_random_bodies(rng, good: bytes) -> Iterator[Request]:
    kinds = ["application/json", "multipart/form-data; boundary=xyz", "image/png", ""]
    kinds += ["application/octet-stream", "multipart/form-data", "application/x+json"]
    body = rng.bytes(int(rng.integers(0, 3000)))
    yield "POST", "/v1/predict", body, {"Content-Type": str(rng.choice(kinds))}
    yield "POST", "/v1/feedback", body, {"Content-Type": str(rng.choice(kinds))}


def gen_truncated_multipart(rng, good: bytes) -> Iterator[Request]:
    body, content_type = multipart([("a.png", good), ("b.png", good)])
    cut = int(rng.integers(0, len(body)))
    yield "POST", "/v1/predict", body[:cut], {"Content-Type": content_type}
    mangled = bytearray(body)
    for i in rng.integers(0, len(body), 8):
        mangled[i] = int(rng.integers(0, 256))
    yield "POST", "/v1/predict", bytes(mangled), {"Content-Type": content_type}
    wrong = content_type.replace("boundary=", "boundary=x") if rng.random() < 0.5 else content_type
    yield "POST", "/v1/predict", body.replace(b"form-data;", b"form-data"), {"Content-Type": wrong}


def gen_bad_json(rng, good: bytes) -> Iterator[Request]:
    headers = {"Content-Type": "application/json"}
    good64 = base64.b64encode(good).decode()
    for value in json_values(rng):
        for payload in (
            {"images": value},
            {"images": [value]},
            {"images": [{"name": value, "data": good64}]},
            {"images": [{"data": value}]},
            {"prediction_id": value, "label": value},
        ):
            path = "/v1/feedback" if "label" in payload else "/v1/predict"
            if rng.random() < 0.25:
                yield "POST", path, json.dumps(payload).encode(), headers
    yield "POST", "/v1/predict", b"[" * 100_000, headers  # deep nesting
    yield "POST", "/v1/feedback", b"[" * 100_000, headers
    yield "POST", "/v1/predict", b'{"images": [{"data": NaN, "name": Infinity}]}', headers
    yield "POST", "/v1/feedback", b'{"prediction_id": NaN, "label": -Infinity}', headers
    yield "POST", "/v1/predict", text(rng, 40).encode("utf-8"), headers
    yield "POST", "/v1/predict", b"\xff\xfe{bad utf8", headers


def gen_bad_base64(rng, good: bytes) -> Iterator[Request]:
    headers = {"Content-Type": "application/json"}
    good64 = base64.b64encode(good).decode()
    for data in (
        good64[:-3],
        good64 + "!",
        "====",
        "data:image/png;base64,%%%",
        base64.b64encode(rng.bytes(64)).decode(),
        base64.b64encode(good[: int(rng.integers(1, len(good)))]).decode(),
        "data:,",
    ):
        yield "POST", "/v1/predict", json.dumps({"images": [{"data": data}]}).encode(), headers


def gen_bad_images(rng, good: bytes) -> Iterator[Request]:
    # a PNG header claiming 60000 x 60000 pixels, a broken JPEG, EPS (not decoded), empty
    bomb = good[:16] + (60000).to_bytes(4, "big") * 2 + good[24:]
    files = [("bomb.png", bomb), ("x.jpg", b"\xff\xd8\xff" + rng.bytes(100))]
    files += [("x.eps", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"), ("e.png", b"")]
    files += [("gray16.png", png(rng.integers(0, 65535, (5, 7)).astype(np.uint16)))]
    yield "POST", "/v1/predict", *_multipart_request([files[int(rng.integers(0, len(files)))]])
    yield "POST", "/v1/predict", *_multipart_request(files)


def _multipart_request(files) -> tuple[bytes, dict[str, str]]:
    body, content_type = multipart(files)
    return body, {"Content-Type": content_type}


def gen_methods_and_paths(rng, good: bytes) -> Iterator[Request]:
    method = str(rng.choice(["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "POST"]))
    path = str(rng.choice(["/v1/predict", "/v1/feedback", "/health", "/ready", "/", "/metrics"]))
    yield method, path, None, {}
    junk = "/" + "".join(rng.choice(list("abc/%._-~"), int(rng.integers(1, 60))))
    yield "GET", junk + "?x=" + "y" * int(rng.integers(0, 500)), None, {}
    yield "POST", "/v1/model", b"{}", {"Content-Type": "application/json"}


def gen_headers_and_limits(rng, good: bytes) -> Iterator[Request]:
    yield "GET", "/health", None, {"X-Big": "a" * int(rng.integers(1000, 100_000))}
    many = {f"X-H{i}": "v" for i in range(int(rng.integers(10, 300)))}
    yield "GET", "/v1/model", None, many
    yield "POST", "/v1/predict", *_multipart_request([("a.png", good)] * 9)  # over max_images
    yield "POST", "/v1/predict", rng.bytes(70_000), {"Content-Type": "application/json"}
    token = "".join(rng.choice(list("Bearer xyz+/=%!"), int(rng.integers(0, 40))))
    headers = {"Content-Type": "application/json", "Authorization": token}
    yield "POST", "/v1/predict", b"{}", headers
    yield "POST", "/v1/predict", b"", {"Content-Type": "application/json", "Content-Length": "0"}


GENERATORS: list[Callable] = [
    gen_random_bodies,
    gen_truncated_multipart,
    gen_bad_json,
    gen_bad_base64,
    gen_bad_images,
    gen_methods_and_paths,
    gen_headers_and_limits,
]


def raw_garbage(port: int, rng: np.random.Generator) -> bytes:
    """Bytes that are not HTTP at all, on a fresh connection: uvicorn answers 400 or closes."""
    lines = [b"GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", rng.bytes(200) + b"\r\n\r\n"]
    lines += [b"POST /v1/predict HTTP/1.1\r\nContent-Length: -5\r\n\r\n"]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(lines[int(rng.integers(0, len(lines)))])
        try:
            return sock.recv(200)
        except OSError:
            return b""


def test_malformed_requests_never_get_a_5xx(exported, good_png, tmp_path):
    model = exported[0] / "export" / "model.onnx"
    rng = np.random.default_rng(SEED)
    running, _, store = start(model, tmp_path, max_bytes=60_000, max_images=8)
    statuses: Counter[int] = Counter()
    with running:
        client = running.client()
        for _ in range(ROUNDS):
            for generator in GENERATORS:
                for method, path, body, headers in generator(rng, good_png):
                    response = send(client, method, path, body, headers)
                    statuses[response.status] += 1
                    assert response.status < 500, (method, path, response.body[:300])
                    if response.status >= 400 and method != "HEAD" and path != "/":
                        assert_error_shape(response)
            reply = raw_garbage(running.port, rng)
            assert not reply.startswith(b"HTTP/1.1 5"), reply
        assert sum(statuses.values()) >= 500, statuses
        # still healthy, and answering properly
        assert client.get("/health").status == 200 and client.get("/ready").status == 200
        ok = client.predict_files([("good.png", good_png)])
        assert ok.status == 200 and "class" in ok.json()["results"][0]
        metrics = client.get("/metrics").body.decode()
    assert 'status="5' not in metrics
    assert not store.errors


def send(client: Client, method: str, path: str, body: bytes | None, headers) -> Response:
    try:
        return client.request(method, path, body, headers)
    except (ConnectionError, OSError):
        # the server may close the connection after refusing a request (413, bad HTTP);
        # what it answered there is checked by a fresh request
        client.conn.close()
        return client.request("GET", "/health")


def assert_error_shape(response: Response) -> None:
    """Errors from the app are JSON ``{"error": ...}``; uvicorn's own 400 for bad HTTP is text."""
    if response.headers.get("content-type", "").startswith("application/json"):
        assert isinstance(response.json().get("error"), str), response.body[:200]
    else:
        assert response.status in (400, 431), (response.status, response.body[:200])
