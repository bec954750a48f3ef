"""scripts/serve.py as a process: it imports no torch (nor any mlcycle module but the server's),
drains its store on SIGTERM, says what is wrong in one line, and follows retrain.py's champion
pointer."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from export_helpers import BLOCKER, ROOT, exported_run
from serve_helpers import (
    Client,
    listening_socket,
    multipart,
    post_until,
    val_uploads,
    wait_ready,
)

SERVE = ROOT / "scripts" / "serve.py"


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    return exported_run(tmp_path_factory)


@pytest.fixture(scope="module")
def model_path(exported) -> Path:
    return exported[0] / "export" / "model.onnx"


@pytest.fixture(scope="module")
def images(exported) -> list[tuple[str, bytes]]:
    return val_uploads(exported[0])


# serve.py runs where torch & co and every mlcycle module but mlcycle.serve, mlcycle.edge,
# mlcycle.core and the serve command cannot be imported (export_helpers.BLOCKER exits 99 if one
# was anyway).
SERVING = ("serve", "edge", "core", "commands", "templates", "__init__", "__pycache__")
COMMAND = ("serve", "guard", "parser", "__init__", "__pycache__")
SOURCE = ROOT / "src" / "mlcycle"
TRAINING = tuple(f"mlcycle.{p.stem}" for p in SOURCE.iterdir() if p.stem not in SERVING)
TRAINING += tuple(
    f"mlcycle.commands.{p.stem}" for p in (SOURCE / "commands").iterdir() if p.stem not in COMMAND
)
HEAVY = ("torch", "torchvision", "torchmetrics", "lightning", "pytorch_lightning")
HEAVY += ("albumentations", "cv2", "sklearn", "matplotlib", *TRAINING)


def test_server_process_imports_no_torch_and_drains_its_store_on_sigterm(
    model_path, tmp_path, images
):
    sock = listening_socket()  # a free port for the child, released just before it starts
    port = sock.getsockname()[1]
    sock.close()
    args = ["--model", str(model_path), "--port", str(port), "--store-dir", str(tmp_path)]
    proc = subprocess.Popen(
        [sys.executable, "-c", BLOCKER, ",".join(HEAVY), str(SERVE), *args, "--max-wait-ms", "20"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    accepted, stop = [], threading.Event()

    def client_loop() -> None:
        accepted.append(post_until(port, *multipart(images * 4), stop))

    try:
        wait_ready(port, proc)
        threads = [threading.Thread(target=client_loop) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)  # with requests in flight
        _, stderr = proc.communicate(timeout=60)
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
    for thread in threads:
        thread.join(10)
    assert proc.returncode == 0, stderr
    assert "LEAKED" not in stderr and "Application shutdown complete" in stderr
    with sqlite3.connect(tmp_path / "predictions.db") as conn:
        stored = conn.execute("select count(*) from predictions").fetchone()[0]
    assert sum(accepted) > 0 and stored == sum(accepted)


def test_cli_errors_are_one_line(tmp_path, model_path):
    def serve(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(SERVE), *args], capture_output=True, text=True, timeout=60
        )

    missing = serve("--run", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    ts = serve("--model", str(model_path.with_suffix(".ts")))
    assert ts.returncode == 2 and "ONNX Runtime only" in ts.stderr
    taken = listening_socket()
    try:
        port = str(taken.getsockname()[1])
        busy = serve("--model", str(model_path), "--port", port, "--store-dir", str(tmp_path))
    finally:
        taken.close()
    assert busy.returncode == 2 and "cannot listen" in busy.stderr


def test_champion_pointer_reloads_on_change_and_on_sighup(exported, model_path, tmp_path, images):
    run_a, run_b = exported[0], tmp_path / "b"
    (run_b / "export").mkdir(parents=True)
    for name in ("model.json", "verification.json"):
        (run_b / "export" / name).write_bytes((run_a / "export" / name).read_bytes())
    (run_b / "export" / "model.onnx").write_bytes(
        (run_a / "export" / "model.int8.onnx").read_bytes()
    )
    pointer = tmp_path / "champion"

    def point(target) -> None:  # as retrain.py does: a new file renamed into place
        (tmp_path / ".champion.tmp").write_text(f"{target}\n")
        os.replace(tmp_path / ".champion.tmp", pointer)

    def version_becomes(client: Client, path: Path) -> str:
        want = hashlib.sha256(path.read_bytes()).hexdigest()
        deadline = time.monotonic() + 15
        while client.get("/v1/model").json()["model_version"] != want:
            assert time.monotonic() < deadline, f"still not serving {path}"
            time.sleep(0.05)
        return want

    point(run_a)
    sock = listening_socket()
    port = sock.getsockname()[1]
    sock.close()
    args = ["--champion", str(pointer), "--port", str(port), "--reload-interval", "0.1"]
    proc = subprocess.Popen(
        [sys.executable, str(SERVE), *args], cwd=ROOT, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_ready(port, proc)
        client = Client(port)
        version_a = version_becomes(client, model_path)
        point(run_b)  # a new champion
        version_b = version_becomes(client, run_b / "export" / "model.onnx")
        assert client.predict_files(images[:1]).json()["model_version"] == version_b
        point(tmp_path / "gone")  # a broken pointer: the current model keeps serving
        time.sleep(0.5)
        assert client.predict_files(images[:1]).json()["model_version"] == version_b
        point(run_b)
        (run_b / "export" / "model.onnx").write_bytes(model_path.read_bytes())  # re-exported
        proc.send_signal(signal.SIGHUP)  # same pointer: only SIGHUP reloads
        assert version_becomes(client, model_path) == version_a
        assert client.get("/ready").status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "champion reload failed" in stderr and "gone" in stderr
    with sqlite3.connect(tmp_path / "serving" / "predictions.db") as conn:
        versions = [v for (v,) in conn.execute("select model_version from predictions")]
    assert versions == [version_b, version_b]
