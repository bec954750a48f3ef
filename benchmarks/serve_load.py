#!/usr/bin/env python
"""Load test of scripts/serve.py with 1, 2 and N workers, beside a LitServe server over the
same export: concurrent clients posting digits images for a fixed time.

    python benchmarks/serve_load.py [--run RUN] [--clients 8] [--seconds 20] [--json out.json]

Without --run, trains and exports the quick-start digits model first (about a minute). Each
server runs in a subprocess; each client is a thread with one keep-alive http.client connection
posting one image per request (base64 JSON, or --body multipart; --images-per-request for
more). Reported per server: images/s, p50/p99 latency per request, errors, store rows ==
accepted images (after SIGTERM drained the store); then mlcycle's images/s over LitServe's and
the ratio to a bare in-process ONNX Runtime loop (batch 1 and batched). The LitServe baseline
(``pip install litserve``, a benchmark-only package) runs the same ONNX file with the same
decoding and preprocessing (mlcycle.edge), batch 16 and a 2 ms timeout, one worker, no store
and no statistics. Clients and servers share the machine's cores, as a sidecar client would.
"""

from __future__ import annotations

import argparse
import base64
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


def json_body(images: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    entries = [{"name": name, "data": base64.b64encode(data).decode()} for name, data in images]
    return json.dumps({"images": entries}).encode(), "application/json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(
    port: int, proc: subprocess.Popen, path: str = "/ready", timeout: float = 120
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {proc.stderr.read() if proc.stderr else ''}")
        with contextlib.suppress(OSError):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
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


def group_cpu(pgid: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of group ``pgid`` (the
    server and its workers): on a shared machine the cost per image, not the wall clock, is
    what a server controls."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:  # pgrp; utime and stime follow at 11 and 12
                total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def snapshot(clients: list[Client]) -> list[tuple[int, int]]:
    return [(len(c.latencies), c.accepted) for c in clients]


def load(port: int, args, images: list[tuple[str, bytes]], pgid: int | None = None) -> dict:
    """Clients run through warm-up and the timed window; only the window is measured, but every
    accepted image (warm-up included) is counted for the store check."""
    n = args.images_per_request
    encode = json_body if args.body == "json" else multipart
    bodies = [encode(images[i : i + n]) for i in range(0, len(images) - n + 1, n)]
    stop = threading.Event()
    clients = [Client(port, bodies, n, stop) for _ in range(args.clients)]
    for client in clients:
        client.start()
    time.sleep(args.warmup)
    cpu = group_cpu(pgid) if pgid else 0.0
    before, start = snapshot(clients), time.perf_counter()
    time.sleep(args.seconds)
    after, elapsed = snapshot(clients), time.perf_counter() - start
    cpu = (group_cpu(pgid) if pgid else 0.0) - cpu
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
        "server_cpu_ms_per_image": round(cpu * 1000 / max(accepted, 1), 3),
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


def stop(proc: subprocess.Popen) -> int:
    """SIGTERM to the server's process group (its workers too), then its exit code."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        return proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait(10)


def measure(args, cmd: list[str], ready: str) -> tuple[dict, int]:
    port = free_port()
    cmd = [*cmd, "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    try:
        wait_ready(port, proc, ready)
        result = load(port, args, digit_images(), proc.pid)
    finally:
        code = stop(proc)
    return result, code


def serve(args, model: Path, folder: Path, workers: int) -> dict:
    """scripts/serve.py with ``workers`` processes; its figures and the store check."""
    cmd = [sys.executable, "scripts/serve.py", "--model", str(model), "--workers", str(workers)]
    cmd += ["--store-dir", str(folder), "--log-level", "warning", "--threads", str(args.threads)]
    cmd += ["--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms)]
    result, code = measure(args, cmd, "/ready")
    rows = store_rows(folder / "predictions.db")
    result.update(
        exit_code=code, store_rows=rows, store_rows_match=rows == result["accepted_total"]
    )
    return result


# --- the LitServe baseline (a server process: serve_load.py --litserve-server MODEL --port P) ---


def litserve_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("litserve")
    except Exception:
        return None


try:  # a benchmark-only package
    import litserve as ls
except ImportError:
    ls = None

if ls is not None:

    class OnnxAPI(ls.LitAPI):
        """LitServe over the same export: base64 JSON in, the same decode and preprocessing
        (mlcycle.edge), the top class out."""

        model: Path

        def setup(self, device: str) -> None:
            from mlcycle.edge.model import load_model, read_meta

            meta = read_meta(self.model)
            self.spec, self.names = meta["input"], meta["class_names"]
            self.run = load_model(self.model, 1)

        def decode_request(self, request: dict) -> np.ndarray:
            from PIL import Image

            from mlcycle.edge.decode import preprocess, to_array

            data = base64.b64decode(request["images"][0]["data"])
            image = to_array(Image.open(io.BytesIO(data)), self.spec["channels"])
            return preprocess(image, self.spec)

        def batch(self, inputs: list[np.ndarray]) -> np.ndarray:
            return np.stack(inputs)

        def predict(self, x: np.ndarray) -> list[dict]:
            logits = np.asarray(self.run(x)[0])
            probs = np.exp(logits - logits.max(1, keepdims=True))
            probs /= probs.sum(1, keepdims=True)
            return [{"class": self.names[int(q.argmax())], "confidence": float(q.max())} for q in probs]  # fmt: skip

        def unbatch(self, output: list[dict]) -> list[dict]:
            return output

        def encode_response(self, output: dict) -> dict:
            return {"results": [output]}


def litserve_server(model: Path, port: int) -> None:
    """The baseline server: batches of up to 16 within 2 ms, one worker."""
    api = OnnxAPI(max_batch_size=16, batch_timeout=0.002, api_path="/v1/predict")
    api.model = model
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1)
    server.run(port=port, host="127.0.0.1", log_level="warning", generate_client_file=False)


def litserve(args, model: Path) -> dict | None:
    if litserve_version() is None:
        print("litserve is not installed: no LitServe baseline (pip install litserve)")
        return None
    if args.body != "json" or args.images_per_request != 1:
        print("the LitServe baseline takes one base64 JSON image per request: not measured")
        return None
    cmd = [sys.executable, __file__, "--litserve-server", str(model)]
    result, code = measure(args, cmd, "/health")
    result["exit_code"] = code
    return result


def print_table(rows: dict[str, dict]) -> None:
    print(f"{'server':22s} {'images/s':>9s} {'p50 ms':>7s} {'p99 ms':>7s} {'cpu ms/img':>10s} {'errors':>6s}  store")  # fmt: skip
    for name, r in rows.items():
        store = "-" if "store_rows" not in r else f"{r['store_rows']} rows, match {r['store_rows_match']}"  # fmt: skip
        print(f"{name:22s} {r['images_per_s']:9.1f} {r['p50_ms']:7.2f} {r['p99_ms']:7.2f} {r['server_cpu_ms_per_image']:10.3f} {r['errors']:6d}  {store}")  # fmt: skip


def arguments() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", type=Path, help="a run with export/model.onnx (default: train one)")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--body", choices=("json", "multipart"), default="json")
    p.add_argument("--images-per-request", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="the server's --threads")
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--workers", type=int, nargs="*", help="worker counts (default: 1, 2, cores)")
    p.add_argument("--no-litserve", action="store_true", help="skip the LitServe baseline")
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument("--litserve-server", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    return p.parse_args()


def main() -> None:
    args = arguments()
    if args.litserve_server:
        litserve_server(args.litserve_server, args.port)
        return
    counts = sorted(set(args.workers or (1, 2, os.cpu_count() or 1)))
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run or quickstart_run(Path(tmp))
        model = run / "export" / "model.onnx"
        for workers in counts:
            rows[f"mlcycle {workers} worker(s)"] = serve(args, model, Path(tmp) / f"s{workers}", workers)  # fmt: skip
        baseline = None if args.no_litserve else litserve(args, model)
        if baseline is not None:
            rows[f"litserve {litserve_version()}"] = baseline
        bare = bare_onnx(model, digit_images(), min(5.0, args.seconds), args.threads)
    print_table(rows)
    one = rows[f"mlcycle {counts[0]} worker(s)"]
    if baseline is not None:
        print(f"mlcycle {counts[0]} worker(s) / litserve: images/s x{one['images_per_s'] / baseline['images_per_s']:.3f}, p99 x{one['p99_ms'] / baseline['p99_ms']:.3f}")  # fmt: skip
    print(f"bare ONNX Runtime: {bare}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")  # fmt: skip
    if args.json:
        figures = {"servers": rows, "bare": bare, "setup": {k: str(v) for k, v in vars(args).items()}}  # fmt: skip
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
