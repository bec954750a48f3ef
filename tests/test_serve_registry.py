"""serve.py --registry: the server follows the registry's champion itself (a JSON file, SQLite,
PostgreSQL), with no pointer file: a promotion and a rollback are served without a restart,
/v1/model names the registry's version, the store records which model answered; a registry
that does not answer or has no champion is one line."""

from __future__ import annotations

import hashlib
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from export_helpers import BLOCKER, ROOT, exported_run
from serve_helpers import Client, listening_socket, val_uploads, wait_ready

from mlcycle.retrain.registry import open_registry

SERVE = ROOT / "scripts" / "serve.py"
HEAVY = ("torch", "torchvision", "lightning", "sklearn", "matplotlib", "mlcycle.training")


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    return exported_run(tmp_path_factory)


@pytest.fixture(params=["file", "sqlite", "postgresql"])
def where(request, tmp_path) -> str:
    """A registry: a JSON file, a SQLite file, a PostgreSQL database (skipped where none runs)."""
    if request.param == "file":
        return str(tmp_path / "models" / "registry.json")
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'models' / 'registry.db'}"
    return request.getfixturevalue("postgres_url")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def second_run(run_a: Path, folder: Path) -> Path:
    """Another exported run: the first one's INT8 model as its model.onnx (another sha256)."""
    (folder / "export").mkdir(parents=True)
    for name in ("model.json", "verification.json"):
        (folder / "export" / name).write_bytes((run_a / "export" / name).read_bytes())
    (folder / "export" / "model.onnx").write_bytes(
        (run_a / "export" / "model.int8.onnx").read_bytes()
    )
    return folder


def promote(where: str, run: Path, pointer: Path, recorded: str | None = None) -> int:
    """Register ``run`` and make it the champion, as retrain.py records a promotion."""
    registry = open_registry(where, pointer)
    model = run / "export" / "model.onnx"
    entry = registry.add_version(
        run, decision="promoted", onnx=str(model.resolve()), model_sha256=recorded or sha(model)
    )
    registry.promote(entry["version"], "better")
    registry.save()
    registry.write_pointer()
    return entry["version"]


def rollback(where: str, pointer: Path) -> None:
    from mlcycle.commands.retrain import main

    assert main(["--rollback", "--registry", where, "--pointer", str(pointer)])


def serving(client: Client, version: int, model: Path) -> dict:
    """The card once the server serves registry ``version`` (polled every 0.1 s)."""
    deadline = time.monotonic() + 20
    while True:
        card = client.get("/v1/model").json()
        if (card.get("registry") or {}).get("version") == version:
            assert card["model_version"] == sha(model)
            return card
        assert time.monotonic() < deadline, f"still not serving v{version}: {card.get('registry')}"
        time.sleep(0.05)


def test_serve_follows_the_registrys_promotion_and_rollback(exported, tmp_path, where):
    run_a = exported[0]
    run_b = second_run(run_a, tmp_path / "b")
    model_a, model_b = run_a / "export" / "model.onnx", run_b / "export" / "model.onnx"
    pointer, store = tmp_path / "champion", tmp_path / "store"
    assert promote(where, run_a, pointer) == 1
    images = val_uploads(run_a, 1)
    sock = listening_socket()
    port = sock.getsockname()[1]
    sock.close()
    args = ["--registry", where, "--port", str(port), "--reload-interval", "0.1"]
    proc = subprocess.Popen(
        [sys.executable, "-c", BLOCKER, ",".join(HEAVY), str(SERVE), *args, "--store-dir", store],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_ready(port, proc)
        client = Client(port)
        card = serving(client, 1, model_a)
        assert card["registry"]["run"] == str(run_a.resolve())
        assert client.predict_files(images).json()["model_version"] == sha(model_a)
        assert promote(where, run_b, pointer) == 2  # a new champion, no restart
        serving(client, 2, model_b)
        assert client.predict_files(images).json()["model_version"] == sha(model_b)
        rollback(where, pointer)  # retrain.py --rollback: v1 again
        serving(client, 1, model_a)
        assert client.predict_files(images).json()["model_version"] == sha(model_a)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "now serving v2" in stderr and "now serving v1" in stderr
    with sqlite3.connect(store / "predictions.db") as conn:
        answered = [
            v for (v,) in conn.execute("select model_version from predictions order by time")
        ]
    assert answered == [sha(model_a), sha(model_b), sha(model_a)]
    versions = open_registry(where, pointer).versions
    by_sha = {v["model_sha256"]: v["version"] for v in versions}
    assert [by_sha[v] for v in answered] == [1, 2, 1]  # which registry version answered


def serve_fails(capsys, *args: str) -> str:
    from mlcycle.commands.serve import main

    with pytest.raises(SystemExit) as exited:
        main([*args, "--port", "0"])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and len(err.strip().splitlines()) == 1, err
    return err


def test_an_unreachable_registry_is_one_line_within_seconds(capsys):
    url = "postgresql+psycopg://mlcycle@127.0.0.1:9/registry"  # nothing listens on port 9
    start = time.monotonic()
    err = serve_fails(capsys, "--registry", url)
    assert time.monotonic() - start < 10
    assert "registry 'postgresql+psycopg://mlcycle@127.0.0.1:9/registry'" in err


def test_a_registry_without_a_champion_says_to_run_retrain(tmp_path, capsys):
    file = tmp_path / "registry.json"
    assert "does not exist; run retrain.py" in serve_fails(capsys, "--registry", str(file))
    file.write_text(json.dumps({"format_version": 1, "champion": None, "versions": []}))
    assert "has no champion; run retrain.py" in serve_fails(capsys, "--registry", str(file))
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    assert "does not exist; run retrain.py" in serve_fails(capsys, "--registry", url)
    open_registry(url)  # the tables, no version yet
    assert "has no champion; run retrain.py" in serve_fails(capsys, "--registry", url)
    err = serve_fails(capsys, "--registry", url, "--model", str(tmp_path / "m.onnx"))
    assert "give one of --run, --model, --champion or --registry" in err


def test_a_champion_whose_export_changed_is_refused(exported, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    promote(url, exported[0], tmp_path / "champion", recorded="0" * 64)
    err = serve_fails(capsys, "--registry", url)
    assert "is not the model registered as v1" in err


def test_predict_uses_the_registrys_champion(exported, tmp_path, capsys):
    from mlcycle.commands.predict import main

    run_a = exported[0]
    run_b = second_run(run_a, tmp_path / "b")
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    promote(url, run_a, tmp_path / "champion")
    promote(url, run_b, tmp_path / "champion")
    images = [str(p) for p in sorted((run_a.parent / "images").rglob("*.png"))[:2]]
    db = f"sqlite:///{tmp_path / 'predictions.db'}"
    assert main(["--registry", url, *images, "--db", db]) == 0
    out, err = capsys.readouterr()
    assert len(out.strip().splitlines()) == 2 and "champion v2" in err
    with sqlite3.connect(tmp_path / "predictions.db") as conn:
        versions = {v for (v,) in conn.execute("select model_version from predictions")}
    assert versions == {sha(run_b / "export" / "model.onnx")}
    assert main(["--registry", "postgresql+psycopg://u@127.0.0.1:9/r", *images]) == 2
    assert (
        "cannot reach the registry 'postgresql+psycopg://u@127.0.0.1:9/r'"
        in capsys.readouterr().err
    )
