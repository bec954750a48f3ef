"""PostgreSQL as the shared database: a store that goes away and comes back, an unreachable
URL named in one line (password hidden) by serve, predict --db, monitor and tune, several
server processes writing one store, and two tune workers sharing one study."""

from __future__ import annotations

import importlib
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from export_helpers import ROOT, exported_run
from postgres_fixture import remove_server, start_server, unavailable
from serve_helpers import Client, listening_socket, multipart, post_until, val_uploads

from mlcycle.serve.store import PredictionStore, prediction_row

SCRIPTS = ROOT / "scripts"


def row(i: int) -> dict:
    return prediction_row(model_version="v1", source="test", input_sha256=f"{i:064d}")


def wait_for(check, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def own_server():
    """A PostgreSQL server of this test's own (it stops and restarts it)."""
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    server = start_server()
    yield server
    remove_server(server)


def test_rows_wait_in_memory_while_the_store_is_away_and_are_written_when_it_returns(own_server):
    store = PredictionStore(own_server.url, flush_seconds=0.05).start()
    store.add_many(row(i) for i in range(50))
    store.flush()
    assert store.written == 50 and store.recording
    own_server.stop()
    store.add_many(row(i) for i in range(50, 120))
    store.flush()
    assert not store.recording and store.buffered == 70 and store.lost == 0
    own_server.restart()
    assert wait_for(lambda: store.buffered == 0), store.errors
    assert store.recording and store.written == 120 and store.count() == 120
    store.close()


def test_rows_the_store_cannot_take_are_counted_as_lost(own_server):
    store = PredictionStore(own_server.url, buffer_rows=30).start()
    own_server.stop()
    store.add_many(row(i) for i in range(50))
    store.flush()
    assert store.buffered == 30 and store.lost == 20  # over the buffer
    store.close()  # the database is still away at shutdown
    assert store.buffered == 0 and store.lost == 50 and store.written == 0
    own_server.restart()


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def silent_server() -> socket.socket:
    """A port that accepts connections and never answers (a database host that hangs)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


TUNE_YAML = """train: [configs/image_folder.yaml]
trials: 1
objective: {metric: val/f1}
space: {model.lr: {low: 0.001, high: 0.01}}
"""


def commands(url: str, run: Path, tmp_path: Path) -> dict[str, list[str]]:
    model = run / "export" / "model.onnx"
    tune = tmp_path / "tune.yaml"
    tune.write_text(TUNE_YAML)
    return {
        "serve": ["serve", "--model", str(model), "--db", url, "--port", str(closed_port())],
        "predict": ["predict", str(model), str(run.parent / "images"), "--db", url],
        "monitor": ["monitor", "--db", url, "--run", str(run)],
        # a train.py option it would refuse: the storage must be checked before the config
        "tune": [
            "tune",
            "--config",
            str(tune),
            "--storage",
            url,
            "--out",
            str(tmp_path / "t"),
            "--trainer.max_epochs=oops",
        ],  # fmt: skip
        "retrain": ["retrain", "--list", "--registry", url],
    }


def in_process(argv: list[str], capsys) -> tuple[int, str, float]:
    """The command's main in this process: its exit code, its stderr, the seconds it took."""
    main = importlib.import_module(f"mlcycle.commands.{argv[0]}").main
    capsys.readouterr()
    start = time.monotonic()
    try:
        code = main(argv[1:])  # predict returns its exit code, the others exit
    except SystemExit as exc:
        code = exc.code
    took = time.monotonic() - start
    captured = capsys.readouterr()
    assert "s3cret" not in captured.err + captured.out
    return code, captured.err, took


def unreachable_url(port: int) -> str:
    return f"postgresql+psycopg://mlcycle:s3cret@127.0.0.1:{port}/store"


@pytest.mark.parametrize("command", ["serve", "predict", "monitor", "tune", "retrain"])
def test_a_refused_database_is_one_line_exit_2_in_seconds(command, tmp_path, exported, capsys):
    """Nothing listens on the port; tune and retrain check it before reading anything else."""
    run, _, _ = exported
    port = closed_port()
    argv = commands(unreachable_url(port), run, tmp_path)[command]
    code, err, took = in_process(argv, capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and f"127.0.0.1:{port}" in lines[0], err
    assert took < 5, took


def test_a_database_host_that_never_answers_stops_serve_in_seconds(tmp_path, exported):
    """The script end to end: connect_timeout (5 s) gives up on a host that never answers."""
    run, _, _ = exported
    silent = silent_server()
    port = silent.getsockname()[1]
    serve = commands(unreachable_url(port), run, tmp_path)["serve"]
    start = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, str(SCRIPTS / "serve.py"), *serve[1:]],
            capture_output=True, text=True, timeout=60, cwd=ROOT,
        )  # fmt: skip
    finally:
        silent.close()
    took = time.monotonic() - start
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert f"127.0.0.1:{port}" in lines[0] and "s3cret" not in done.stderr + done.stdout
    assert took < 20, took  # 5 s of connect_timeout plus the start of a Python process


@pytest.mark.parametrize("command", ["tune", "retrain"])
def test_a_storage_or_registry_that_never_answers_is_given_up_in_seconds(
    command, tmp_path, exported, capsys
):
    """tune's study storage (Optuna's engine) and retrain's registry open their own engines."""
    run, _, _ = exported
    silent = silent_server()
    port = silent.getsockname()[1]
    try:
        code, err, took = in_process(
            commands(unreachable_url(port), run, tmp_path)[command], capsys
        )
    finally:
        silent.close()
    assert code == 2 and err.count("\n") == 1 and f"127.0.0.1:{port}" in err, err
    assert took < 10, took


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return exported_run(tmp_path_factory)


def start_servers(model: Path, url: str, count: int) -> list[tuple[subprocess.Popen, int]]:
    servers = []
    for _ in range(count):
        sock = listening_socket()
        port = sock.getsockname()[1]
        sock.close()
        args = ["--model", str(model), "--db", url, "--port", str(port), "--max-wait-ms", "5"]
        proc = subprocess.Popen(
            [sys.executable, str(SCRIPTS / "serve.py"), *args],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        servers.append((proc, port))
    for proc, port in servers:
        assert wait_for(lambda p=port: ready(p), 60), proc.poll()
    return servers


def ready(port: int) -> bool:
    try:
        return Client(port).get("/ready").status == 200
    except OSError:
        return False


@pytest.mark.slow
def test_three_servers_write_one_postgresql_store_and_lose_nothing(exported, postgres_url):
    run, _, _ = exported
    servers = start_servers(run / "export" / "model.onnx", postgres_url, 3)
    body, content_type = multipart(val_uploads(run) * 2)
    answered, stop = [], threading.Event()

    def client_loop(port: int) -> None:
        answered.append(post_until(port, body, content_type, stop))

    threads = [threading.Thread(target=client_loop, args=(p,)) for _, p in servers for _ in "ab"]
    for thread in threads:
        thread.start()
    time.sleep(2.0)
    for proc, _ in servers:
        proc.send_signal(signal.SIGTERM)  # with requests in flight
    codes = [proc.wait(timeout=60) for proc, _ in servers]
    stop.set()
    for thread in threads:
        thread.join(10)
    assert codes == [0, 0, 0], [proc.stderr.read() for proc, _ in servers]
    engine = sa.create_engine(postgres_url)
    with engine.connect() as connection:
        stored = connection.execute(sa.text("select count(*) from predictions")).scalar_one()
    engine.dispose()
    assert sum(answered) > 0 and stored == sum(answered)


@pytest.mark.slow
def test_a_server_keeps_answering_while_its_store_is_away(exported, own_server):
    run, _, _ = exported
    [(proc, port)] = start_servers(run / "export" / "model.onnx", own_server.url, 1)
    body, content_type = multipart(val_uploads(run)[:2])
    client, answered = Client(port), 0

    def predict() -> None:
        nonlocal answered
        response = client.request("POST", "/v1/predict", body, {"Content-Type": content_type})
        assert response.status == 200
        answered += len(response.json()["results"])

    def metrics() -> str:
        return client.get("/metrics").body.decode()

    try:
        predict()
        assert wait_for(lambda: "mlcycle_serve_store_rows_written 2.0" in metrics())
        own_server.stop()
        for _ in range(3):
            predict()
        assert wait_for(lambda: client.get("/ready").status == 503)
        checks = client.get("/ready").json()["checks"]
        assert checks["store_recording"] is False and checks["store_writer_alive"]
        assert "mlcycle_serve_store_rows_buffered 6.0" in metrics()
        own_server.restart()
        assert wait_for(lambda: client.get("/ready").status == 200)
        assert wait_for(lambda: "mlcycle_serve_store_rows_written 8.0" in metrics())
        assert "mlcycle_serve_store_rows_lost 0.0" in metrics()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    store = PredictionStore(own_server.url)
    assert store.count() == answered == 8


@pytest.mark.slow
def test_two_tune_workers_share_one_study_on_postgresql(tmp_path, postgres_url):
    import optuna
    from conftest import write_folder
    from test_tune import tune_process, tune_yaml

    images = write_folder(tmp_path / "images")
    config, out = tune_yaml(tmp_path, pruner=False), tmp_path / "study"
    first = tune_process(config, out, images, 6, "--storage", postgres_url)
    second = tune_process(config, tmp_path / "joined", images, 6, "--storage", postgres_url)
    for worker, folder in ((first, out), (second, tmp_path / "joined")):
        assert worker.wait(timeout=300) == 0, folder.with_suffix(".log").read_text()
    trials = optuna.load_study(study_name="tune", storage=postgres_url).trials
    assert sum(t.state.name == "COMPLETE" for t in trials) == 6
    assert not [t for t in trials if t.state.name == "RUNNING"]
    assert len({t.user_attrs["worker"] for t in trials}) == 2
