#!/usr/bin/env python
"""Load test of scripts/serve.py: concurrent clients posting digits images for a fixed time.

    python benchmarks/serve_load.py [--run RUN] [--clients 8] [--seconds 20] [--json out.json]

Without --run, trains and exports the quick-start digits model first (about a minute). The
server runs in a subprocess; each client is a thread with one keep-alive http.client connection
posting one image per request (multipart; --images-per-request for more). Reported: images/s,
p50/p99 latency per request, errors, store rows == accepted images (after SIGTERM drained the
store), and the ratio to a bare in-process ONNX Runtime loop on the same images (batch 1 and
batched). Clients and server share the machine's cores, as a sidecar client would.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def quickstart_run(folder: Path) -> Path:
    """The quick-start digits model, trained and exported into ``folder``."""
    run = folder / "run"
    python = sys.executable
    train = [python, "scripts/train.py", "--config", "configs/quickstart.yaml"]
    subprocess.run([*train, f"--run_dir={run}"], cwd=ROOT, check=True, capture_output=True)
    export = [python, "scripts/export.py", "--run", str(run)]
    subprocess.run(export, cwd=ROOT, check=True, capture_output=True)
    return run


def digit_images(count: int = 200) -> list[tuple[str, bytes]]:
    files = sorted((ROOT / "data" / "digits").rglob("*.png"))
    if not files:
        from PIL import Image
        from sklearn.datasets import load_digits

        out = []
        for i, image in enumerate(load_digits().images[:count]):
            buf = io.BytesIO()
            Image.fromarray((image * 16).clip(0, 255).astype(np.uint8)).save(buf, "PNG")
            out.append((f"{i}.png", buf.getvalue()))
        return out
    step = max(1, len(files) // count)
    return [(p.name, p.read_bytes()) for p in files[::step][:count]]


def multipart(images: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, data in images:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            "Content-Type: image/png\r\n\r\n"
        )
        parts.append(head.encode() + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {proc.stderr.read() if proc.stderr else ''}")
        with contextlib.suppress(OSError):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/ready")
            if conn.getresponse().status == 200:
                return
        time.sleep(0.1)
    raise RuntimeError("the server did not become ready")


class Client(threading.Thread):
    """Posts requests over one keep-alive connection until ``stop``; keeps latencies."""

    def __init__(self, port: int, bodies: list[tuple[bytes, str]], per_request: int, stop):
        super().__init__(daemon=True)
        self.port, self.bodies, self.per_request, self.stop = port, bodies, per_request, stop
        self.latencies: list[float] = []
        self.errors, self.accepted = 0, 0

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        i = 0
        while not self.stop.is_set():
            body, content_type = self.bodies[i % len(self.bodies)]
            i += 1
            start = time.perf_counter()
            try:
                conn.request("POST", "/v1/predict", body, {"Content-Type": content_type})
                response = conn.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException):
                self.errors += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                continue
            self.latencies.append(time.perf_counter() - start)
            results = json.loads(payload).get("results", []) if response.status == 200 else []
            answered = sum("error" not in r for r in results)
            self.accepted += answered
            self.errors += response.status != 200 or answered != self.per_request
        conn.close()


def snapshot(clients: list[Client]) -> list[tuple[int, int]]:
    return [(len(c.latencies), c.accepted) for c in clients]


def load(port: int, args, images: list[tuple[str, bytes]]) -> dict:
    """Clients run through warm-up and the timed window; only the window is measured, but every
    accepted image (warm-up included) is counted for the store check."""
    n = args.images_per_request
    bodies = [multipart(images[i : i + n]) for i in range(0, len(images) - n + 1, n)]
    stop = threading.Event()
    clients = [Client(port, bodies, n, stop) for _ in range(args.clients)]
    for client in clients:
        client.start()
    time.sleep(args.warmup)
    before, start = snapshot(clients), time.perf_counter()
    time.sleep(args.seconds)
    after, elapsed = snapshot(clients), time.perf_counter() - start
    stop.set()
    for client in clients:
        client.join()
    window = [
        x
        for c, (a, _), (b, _) in zip(clients, before, after, strict=True)
        for x in c.latencies[a:b]
    ]
    latencies = np.array(window) * 1000
    accepted = sum(b - a for (_, a), (_, b) in zip(before, after, strict=True))
    return {
        "requests_per_s": round(len(window) / elapsed, 1),
        "images_per_s": round(accepted / elapsed, 1),
        "p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "p99_ms": round(float(np.percentile(latencies, 99)), 2),
        "errors": sum(c.errors for c in clients),
        "accepted_total": sum(c.accepted for c in clients),
    }


def bare_onnx(model: Path, images: list[tuple[str, bytes]], seconds: float, threads: int) -> dict:
    """Images/s of ONNX Runtime alone on the preprocessed images: batch 1 and batch 32."""
    from PIL import Image

    from mlcycle.edge.decode import preprocess, to_array
    from mlcycle.edge.model import load_model, read_meta

    meta = read_meta(model)
    run = load_model(model, threads)
    spec = meta["input"]
    xs = [
        preprocess(to_array(Image.open(io.BytesIO(d)), spec["channels"]), spec) for _, d in images
    ]
    out = {}
    for batch in (1, 32):
        chunks = [np.stack(xs[i : i + batch]) for i in range(0, len(xs) - batch + 1, batch)]
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for chunk in chunks:
                run(chunk)
                done += len(chunk)
        out[f"batch{batch}_images_per_s"] = round(done / (time.perf_counter() - start), 1)
    return out


def store_rows(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("select count(*) from predictions").fetchone()[0])


def serve(args, model: Path, folder: Path) -> tuple[dict, int, int]:
    port = free_port()
    cmd = [sys.executable, "scripts/serve.py", "--model", str(model), "--port", str(port)]
    cmd += ["--store-dir", str(folder), "--log-level", "warning", "--threads", str(args.threads)]
    cmd += ["--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        wait_ready(port, proc)
        result = load(port, args, digit_images())
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    return result, code, store_rows(folder / "predictions.db")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, help="a run with export/model.onnx (default: train one)")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--images-per-request", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="the server's --threads")
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run or quickstart_run(Path(tmp))
        model = run / "export" / "model.onnx"
        result, code, rows = serve(args, model, Path(tmp) / "serving")
        bare = bare_onnx(model, digit_images(), min(5.0, args.seconds), args.threads)
    result.update(bare)
    result["server_exit_code"] = code
    result["store_rows"] = rows
    result["store_rows_match"] = rows == result["accepted_total"]
    result["vs_bare_batch1"] = round(result["images_per_s"] / bare["batch1_images_per_s"], 3)
    result["vs_bare_batch32"] = round(result["images_per_s"] / bare["batch32_images_per_s"], 3)
    result["setup"] = {k: str(v) for k, v in vars(args).items() if k != "json"}
    result["cores"] = os.cpu_count()
    for key, value in result.items():
        print(f"{key:22s} {value}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
