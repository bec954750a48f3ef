"""scripts/serve.py: the model server over real HTTP on a loopback port, with a tiny exported
model; a subprocess proves it imports no torch and drains its store on SIGTERM."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from export_helpers import BLOCKER, ROOT, exported_run
from serve_helpers import Client, listening_socket, multipart, png, start

from mlcycle.edge.form import Options
from mlcycle.edge.forms import form_for
from mlcycle.edge.model import load_model, read_meta
from mlcycle.edge.predict import answer_paths
from mlcycle.serve.micro_batcher import MicroBatcher

SERVE = ROOT / "scripts" / "serve.py"
TOKEN = "s3cret-token"


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    return exported_run(tmp_path_factory)


@pytest.fixture(scope="module")
def model_path(exported) -> Path:
    return exported[0] / "export" / "model.onnx"


@pytest.fixture(scope="module")
def images(exported) -> list[tuple[str, bytes]]:
    """Validation images of the tiny run, as uploaded files."""
    run = exported[0]
    rows = [line.split(",") for line in (run / "splits.csv").read_text().splitlines()[1:]]
    paths = [Path(path) for path, _, split in rows if split == "val"][:6]
    return [(p.name, p.read_bytes()) for p in paths]


@pytest.fixture(scope="module")
def server(model_path, tmp_path_factory):
    running, _, store = start(model_path, tmp_path_factory.mktemp("store"), max_images=8)
    with running:
        yield running
    assert not store.errors


@pytest.fixture
def client(server) -> Client:
    return server.client()


def rows(server, table: str = "predictions") -> list[sqlite3.Row]:
    server.service.store.flush()
    db = server.service.store.engine.url.database
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute(f"select * from {table}").fetchall()


def test_multipart_predictions_are_predict_pys(client, images, model_path, tmp_path):
    meta = read_meta(model_path)
    paths = []
    for name, data in images[:3]:
        (tmp_path / name).write_bytes(data)
        paths.append(tmp_path / name)
    expected = answer_paths(load_model(model_path), form_for(meta, Options(top_k=3)), paths)
    response = client.predict_files(images[:3])
    assert response.status == 200
    body = response.json()
    assert body["model_version"] == hashlib.sha256(model_path.read_bytes()).hexdigest()
    for result, want in zip(body["results"], expected, strict=True):
        assert result["name"] == Path(want["path"]).name
        assert result["class"] == want["class"] and result["index"] == want["index"]
        assert result["top_k"] == want["top_k"] and len(result["top_k"]) == 3
        assert result["confidence"] == pytest.approx(want["confidence"])
        assert len(result["prediction_id"]) == 36


def test_json_many_images_and_a_bad_one_among_them(client, images):
    files = [*images[:2], ("broken.png", b"\x89PNG not really"), images[2]]
    response = client.predict_json(files)
    assert response.status == 200
    results = response.json()["results"]
    assert [r["name"] for r in results] == [n for n, _ in files]
    assert "not a readable image" in results[2]["error"] and "prediction_id" not in results[2]
    assert all("class" in r for i, r in enumerate(results) if i != 2)
    data_url = "data:image/png;base64," + base64.b64encode(images[0][1]).decode()
    same = client.post_json("/v1/predict", {"images": [{"data": data_url}]}).json()["results"]
    assert same[0]["name"] == "image0" and same[0]["class"] == results[0]["class"]


def test_all_images_unreadable_is_a_400_with_each_reason(client):
    response = client.predict_files([("a.txt", b"hello"), ("empty.png", b"")])
    assert response.status == 400
    body = response.json()
    assert body["error"].startswith("no image could be read")
    assert [r["name"] for r in body["results"]] == ["a.txt", "empty.png"]
    assert all("error" in r for r in body["results"])


def test_every_answered_image_is_a_store_row(server, client, images):
    name, data = images[1]
    result = client.predict_files([(name, data)]).json()["results"][0]
    (row,) = [r for r in rows(server) if r["id"] == result["prediction_id"]]
    assert row["source"] == "api" and row["input_name"] == name
    assert row["input_sha256"] == hashlib.sha256(data).hexdigest()
    assert (row["width"], row["height"], row["mode"]) == (20, 20, "RGB")
    assert row["predicted"] == result["class"] and row["confidence"] == result["confidence"]
    assert json.loads(row["top_k"]) == result["top_k"]
    assert row["latency_ms"] > 0 and row["pixels"] == 400 and row["brightness"] > 0
    assert row["model_version"] == server.service.model.version


def test_feedback(server, client, images):
    pid = client.predict_files(images[:1]).json()["results"][0]["prediction_id"]
    # at once: the row may still be queued; the server writes it before the label
    ok = client.post_json("/v1/feedback", {"prediction_id": pid, "label": "red"})
    assert ok.status == 200 and ok.json() == {
        "prediction_id": pid,
        "label": "red",
        "recorded": True,
    }
    assert [(r["prediction_id"], r["label"]) for r in rows(server, "feedback")][-1] == (pid, "red")
    unknown = client.post_json("/v1/feedback", {"prediction_id": "nope", "label": "red"})
    assert unknown.status == 404 and "nope" in unknown.json()["error"]
    bad = client.post_json("/v1/feedback", {"prediction_id": pid, "label": "purple"})
    assert bad.status == 400 and "not a class" in bad.json()["error"]
    wrong = client.post_json("/v1/feedback", {"prediction_id": 7, "label": None})
    assert wrong.status == 422 and "prediction_id" in wrong.json()["error"]


def test_model_card_health_and_ready(client, model_path):
    card = client.get("/v1/model").json()
    assert card["model_version"] == hashlib.sha256(model_path.read_bytes()).hexdigest()
    assert card["task"] == "classification" and card["class_names"] == ["blue", "green", "red"]
    assert "val/acc" in card["validation_metrics"]
    assert card["verification"]["passed"] is True
    assert card["verification"]["artifact"]["file"] == "model.onnx"
    assert len(card["data_fingerprint"]) == 64
    assert card["serving"]["max_images"] == 8 and card["serving"]["batched"] is True
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status == 200 and ready.json()["ready"] is True


def test_limits_and_content_types(client, images):
    nine = client.predict_files(images[:1] * 9)
    assert nine.status == 413 and "9 images" in nine.json()["error"]
    assert client.predict_json(images[:1] * 9).status == 413
    text = client.request("POST", "/v1/predict", b"hi", {"Content-Type": "text/plain"})
    assert text.status == 415 and "multipart/form-data" in text.json()["error"]
    wrong_field = client.predict_files(images[:1], field="file")
    assert wrong_field.status == 400 and "'files'" in wrong_field.json()["error"]
    nan = client.post_json("/v1/predict", b'{"images": [{"data": NaN}]}')
    assert nan.status == 422 and "images.0.data" in nan.json()["error"]
    bad = client.post_json("/v1/predict", {"images": [{"data": "%%%"}]})
    assert bad.status == 400 and "base64" in bad.json()["error"]


def test_body_size_limit(model_path, tmp_path, images):
    running, _, _ = start(model_path, tmp_path, max_bytes=50_000)
    with running:
        client = running.client()
        big = client.predict_files([("big.png", os.urandom(60_000))])
        assert big.status == 413 and "50000 bytes" in big.json()["error"]
        chunks = iter([b'{"images": [', b" " * 60_000, b"]}"])
        headers = {"Content-Type": "application/json"}  # no length: http.client sends chunks
        chunked = client.request("POST", "/v1/feedback", chunks, headers)  # type: ignore[arg-type]
        assert chunked.status == 413 and chunked.json()["error"]
        assert client.predict_files(images[:1]).status == 200


def test_token(model_path, tmp_path, images):
    running, _, _ = start(model_path, tmp_path, token=TOKEN)
    with running:
        anonymous, wrong, right = (running.client(t) for t in (None, "nope", TOKEN))
        for who in (anonymous, wrong):
            response = who.predict_files(images[:1])
            assert response.status == 401 and response.headers["www-authenticate"] == "Bearer"
            assert (
                who.post_json("/v1/feedback", {"prediction_id": "x", "label": "red"}).status == 401
            )
        assert right.predict_files(images[:1]).status == 200
        assert anonymous.get("/v1/model").status == 200 and anonymous.get("/health").status == 200


def test_store_rows_equal_accepted_images_under_load(model_path, tmp_path, images):
    running, _, store = start(model_path, tmp_path, max_batch=16)
    files = [*images, ("bad.png", b"nope")]

    def work(seed: int) -> int:
        client, rng, accepted = running.client(), np.random.default_rng(seed), 0
        for _ in range(20):
            chosen = [files[i] for i in rng.choice(len(files), int(rng.integers(1, 4)))]
            response = client.predict_files(chosen)
            assert response.status in (200, 400)
            accepted += sum("class" in r for r in response.json()["results"])
        return accepted

    with running:
        with ThreadPoolExecutor(8) as pool:
            accepted = sum(pool.map(work, range(8)))
        metrics = running.client().get("/metrics").body.decode()
    # leaving the server drained the store (the lifespan closes it)
    with sqlite3.connect(store.engine.url.database) as conn:
        assert conn.execute("select count(*) from predictions").fetchone()[0] == accepted
    calls = next(
        line for line in metrics.splitlines() if line.startswith("mlcycle_serve_batch_size_count")
    )
    assert float(calls.split()[-1]) < accepted  # several images per model call


def test_metrics(client, images):
    client.predict_files([*images[:2], ("x.bin", b"xx")])
    client.request("POST", "/v1/predict", b"x", {"Content-Type": "text/csv"})
    text = client.get("/metrics").body.decode()
    assert 'mlcycle_serve_requests_total{endpoint="/v1/predict",method="POST",status="200"}' in text
    assert 'mlcycle_serve_requests_total{endpoint="/v1/predict",method="POST",status="415"}' in text
    assert 'mlcycle_serve_request_duration_seconds_bucket{endpoint="/v1/predict",le="0.01"}' in text
    assert 'mlcycle_serve_images_predicted_total{class="' in text
    assert 'mlcycle_serve_rejected_inputs_total{reason="undecodable"}' in text
    assert 'mlcycle_serve_rejected_inputs_total{reason="content_type"}' in text
    assert "mlcycle_serve_batch_size_bucket" in text and "mlcycle_serve_store_rows_written" in text


def test_openapi_lists_every_endpoint_with_schemas(client):
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in ("/v1/predict", "/v1/feedback", "/v1/model", "/health", "/ready", "/metrics", "/"):
        assert path in paths, path
    body = paths["/v1/predict"]["post"]["requestBody"]["content"]
    assert set(body) == {"multipart/form-data", "application/json"}
    schemas = spec["components"]["schemas"]
    for name in ("PredictJSON", "ImageIn", "PredictResponse", "ImageResult", "FeedbackIn"):
        assert name in schemas, name
    ok = paths["/v1/predict"]["post"]["responses"]["200"]["content"]["application/json"]
    assert ok["schema"]["$ref"].endswith("/PredictResponse")
    assert client.get("/docs").status == 200
    page = client.get("/")
    assert page.status == 200 and b"<form" in page.body and b"v1/predict" in page.body


def test_micro_batcher_batches_concurrent_items_in_order():
    import asyncio

    calls: list[list[int]] = []

    def process(items: list[int]) -> list[int]:
        calls.append(items)
        time.sleep(0.02)
        return [i * 10 for i in items]

    async def scenario() -> list[list[int]]:
        batcher = MicroBatcher(process, max_batch=4, max_wait=0.05).start()
        try:
            return await asyncio.gather(*(batcher.submit([i, i + 100]) for i in range(6)))
        finally:
            batcher.stop()

    results = asyncio.run(scenario())
    assert results == [[i * 10, (i + 100) * 10] for i in range(6)]
    assert max(len(c) for c in calls) == 4 and sum(len(c) for c in calls) == 12


# --- segmentation and detection: hand-made graphs with their model.json ---------------------


def tiny_graph(folder: Path, task: str) -> Path:
    """Segmentation: class 0 where the input is bright, 1 where dark. Detection: batch one,
    two fixed boxes (scores 0.9 and 0.3), post-processing in the graph as exported."""
    import onnx
    from onnx import TensorProto, helper

    folder.mkdir()
    batch = "batch" if task == "segmentation" else 1
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 1, 8, 8])
    if task == "segmentation":
        nodes = [
            helper.make_node("Neg", ["input"], ["neg"]),
            helper.make_node("Concat", ["input", "neg"], ["logits"], axis=1),
        ]
        outs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 2, 8, 8])]
        output = {"name": "logits", "shape": ["batch", 2, 8, 8]}
    else:
        consts = {
            "boxes": (TensorProto.FLOAT, [2, 4], [1, 2, 5, 6, 0, 0, 8, 8]),
            "scores": (TensorProto.FLOAT, [2], [0.9, 0.3]),
            "labels": (TensorProto.INT64, [2], [1, 0]),
        }
        nodes = [
            helper.make_node(
                "Constant", [], [name], value=helper.make_tensor(name, kind, shape, values)
            )
            for name, (kind, shape, values) in consts.items()
        ]
        outs = [helper.make_tensor_value_info(n, k, s) for n, (k, s, _) in consts.items()]
        output = {"batch": 1, "outputs": [{"name": n} for n in consts]}
    graph = helper.make_graph(nodes, task, [x], outs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(folder / "model.onnx"))
    meta = {
        "format_version": 1,
        "task": task,
        "class_names": ["light", "dark"],
        "input": {
            "shape": [batch, 1, 8, 8],
            "channels": 1,
            "height": 8,
            "width": 8,
            "mean": [0.5],
            "std": [0.25],
        },
        "output": output,
    }
    (folder / "model.json").write_text(json.dumps(meta))
    return folder / "model.onnx"


def test_segmentation_masks_at_each_images_size(tmp_path):
    import io

    from PIL import Image

    running, _, _ = start(tiny_graph(tmp_path / "seg", "segmentation"), tmp_path / "store")
    image = np.zeros((12, 16), np.uint8)
    image[:, :8] = 255  # left half bright: class 0, right half dark: class 1
    with running:
        result = running.client().predict_files([("half.png", png(image))]).json()["results"][0]
        running.service.store.flush()
        rows_ = running.service.store.rows()
    assert result["size"] == [16, 12] and result["class_shares"] == {"light": 0.5, "dark": 0.5}
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(result["mask_png"]))))
    assert mask.shape == (12, 16) and (mask[:, :8] == 0).all() and (mask[:, 8:] == 1).all()
    assert rows_[0]["predicted"] in ("light,dark", "dark,light")


def test_detection_boxes_in_the_images_own_pixels(tmp_path):
    running, model, _ = start(tiny_graph(tmp_path / "det", "detection"), tmp_path / "store")
    assert not model.batched
    files = [("tall.png", png(np.zeros((24, 16), np.uint8)))] * 5
    with running:
        with ThreadPoolExecutor(4) as pool:  # batch-one graph: one image per call, under load
            responses = list(pool.map(lambda _: running.client().predict_files(files), range(4)))
    for response in responses:
        assert response.status == 200
        for result in response.json()["results"]:
            assert result["size"] == [16, 24]
            assert result["boxes"] == [
                {"class": "dark", "index": 1, "score": 0.9, "box": [2.0, 6.0, 10.0, 18.0]}
            ]


# --- the server process ---------------------------------------------------------------------

# serve.py runs where torch & co and every mlcycle module but mlcycle.serve, mlcycle.edge,
# mlcycle.core and the serve command cannot be imported (export_helpers.BLOCKER exits 99 if one
# was anyway).
SERVING = ("serve", "edge", "core", "commands", "templates", "__init__", "__pycache__")
COMMAND = ("serve", "guard", "__init__", "__pycache__")
SOURCE = ROOT / "src" / "mlcycle"
TRAINING = tuple(f"mlcycle.{p.stem}" for p in SOURCE.iterdir() if p.stem not in SERVING)
TRAINING += tuple(
    f"mlcycle.commands.{p.stem}" for p in (SOURCE / "commands").iterdir() if p.stem not in COMMAND
)
HEAVY = ("torch", "torchvision", "torchmetrics", "lightning", "pytorch_lightning")
HEAVY += ("albumentations", "cv2", "sklearn", "matplotlib", *TRAINING)


def wait_ready(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            if Client(port).get("/ready").status == 200:
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the server did not become ready")


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
        client, count = Client(port), 0
        body, content_type = multipart(images * 4)
        while not stop.is_set():
            try:
                response = client.request(
                    "POST", "/v1/predict", body, {"Content-Type": content_type}
                )
            except OSError:
                break  # the server stopped listening
            if response.status == 200:
                count += sum("class" in r for r in response.json()["results"])
        accepted.append(count)

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


def test_each_image_goes_through_the_model_that_decoded_it():
    from mlcycle.serve.service import Service

    class Fake:
        def __init__(self, tag: str) -> None:
            self.tag = tag

        def process(self, items: list[int]) -> list[str]:
            return [f"{self.tag}{i}" for i in items]

    old, new = Fake("old"), Fake("new")  # around a champion reload a batch may hold both
    entries = [(old, 1), (new, 2), (old, 3), (new, 4)]
    assert Service.process(entries) == ["old1", "new2", "old3", "new4"]  # type: ignore[arg-type]
