"""``serve.py --workers N``: N processes behind one port, one store, metrics summed over them,
SIGTERM drains every worker; a wrong ``--workers`` is one line."""

from __future__ import annotations

import http.client
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from export_helpers import ROOT, exported_run
from serve_helpers import Client, listening_socket, multipart, val_uploads, wait_ready

from mlcycle.commands.serve import main

SERVE = ROOT / "scripts" / "serve.py"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return exported_run(tmp_path_factory)


def free_port() -> int:
    sock = listening_socket()
    port = sock.getsockname()[1]
    sock.close()
    return port


def predict_once(port: int, body: bytes, content_type: str) -> tuple[str, int]:
    """One request on a new connection: (the answering worker's pid, images answered)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/v1/predict", body, {"Content-Type": content_type})
        response = conn.getresponse()
        payload = response.read()
        assert response.status == 200, payload
        return response.getheader("x-mlcycle-worker") or "", payload.count(b'"prediction_id"')
    finally:
        conn.close()


def images_counted(metrics: str) -> float:
    lines = metrics.splitlines()
    return sum(
        float(x.split()[-1]) for x in lines if x.startswith("mlcycle_serve_images_predicted")
    )


def test_two_workers_answer_share_the_store_and_stop_on_sigterm(exported, tmp_path):
    run = exported[0]
    port = free_port()
    args = ["--run", str(run), "--port", str(port), "--store-dir", str(tmp_path), "--workers", "2"]
    proc = subprocess.Popen(
        [sys.executable, str(SERVE), *args, "--log-level", "warning"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_ready(port, proc, within=90)
        body, content_type = multipart(val_uploads(run, count=2))
        pids: dict[str, int] = {}
        answered = 0
        # new connections until both processes have answered some: the second may still be
        # loading the model while the first takes every connection (a busy CI machine)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            pid, count = predict_once(port, body, content_type)
            pids[pid] = pids.get(pid, 0) + 1
            answered += count
            if len(pids) == 2 and min(pids.values()) >= 3:
                break
        assert len(pids) == 2, pids
        assert proc.pid not in {int(p) for p in pids}  # the parent only supervises
        assert images_counted(Client(port).get("/metrics").body.decode()) == answered
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    with sqlite3.connect(tmp_path / "predictions.db") as db:
        rows = db.execute("select count(*) from predictions").fetchone()[0]
    assert rows == answered


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_wrong_workers_value_is_one_line(value, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--model", str(tmp_path / "model.onnx"), "--workers", value])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2
    assert len(err.splitlines()) == 1 and f"'{value}'" in err and "--workers" in err
