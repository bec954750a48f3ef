"""scripts/serve.py: the model server over real HTTP on a loopback port, with a tiny exported
model (the server as a process: test_serve_process.py; other output forms: test_serve_forms.py)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from export_helpers import exported_run
from serve_helpers import Client, start, val_uploads

from mlcycle.edge.form import Options
from mlcycle.edge.forms import form_for
from mlcycle.edge.model import load_model, read_meta
from mlcycle.edge.predict import answer_paths
from mlcycle.serve.micro_batcher import MicroBatcher

TOKEN = "s3cret-token"


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    return exported_run(tmp_path_factory)


@pytest.fixture(scope="module")
def model_path(exported) -> Path:
    return exported[0] / "export" / "model.onnx"


@pytest.fixture(scope="module")
def images(exported) -> list[tuple[str, bytes]]:
    return val_uploads(exported[0])


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


def test_a_run_never_exported_is_told_to_export_first(tmp_path, capsys):
    from mlcycle.commands.serve import main

    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main(["--run", str(run)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert f"export it first: python scripts/export.py --run {run}" in err


def test_a_batch_is_preprocessed_and_measured_as_each_image_alone():
    from mlcycle.edge.decode import preprocess, preprocess_batch
    from mlcycle.serve.stats import batch_stats, image_stats

    rng = np.random.default_rng(0)
    for size, channels in (((8, 8), 1), ((37, 53), 3), ((5, 1), 1), ((16, 16), 3)):
        images = rng.integers(0, 256, (4, *size, channels), dtype=np.uint8)
        images[1] = 200  # a flat image
        spec = {"height": 16, "width": 24, "mean": [0.3] * channels, "std": [0.2] * channels}
        batch = preprocess_batch(images, spec)
        assert batch.shape == (4, channels, 16, 24) and batch.dtype == np.float32
        for image, x, stats in zip(images, batch, batch_stats(images), strict=True):
            np.testing.assert_array_equal(x, preprocess(image, spec))
            assert stats == image_stats(image)


def test_a_mixed_batch_answers_each_image_as_alone(model_path, images):
    from PIL import Image

    from mlcycle.serve.model import Decoded, ServedModel, Unreadable

    served = ServedModel(model_path)
    buf = io.BytesIO()
    Image.new("L", (31, 17), 90).save(buf, "PNG")  # another size and mode in the same batch
    uploads = [images[0], ("broken.png", b"\x89PNG not really"), ("gray.png", buf.getvalue()), images[1]]  # fmt: skip
    together = [Decoded(name, data) for name, data in uploads]
    answers = served.process(together)
    assert isinstance(answers[1], Unreadable) and "not a readable image" in answers[1].error
    for i in (0, 2, 3):
        alone = Decoded(*uploads[i])
        (answer,) = served.process([alone])
        assert answers[i]["class"] == answer["class"]
        assert answers[i]["confidence"] == pytest.approx(answer["confidence"])
        assert together[i].stats == alone.stats and together[i].stats["brightness"] > 0
        assert (together[i].width, together[i].height, together[i].mode) == (alone.width, alone.height, alone.mode)  # fmt: skip
    assert (together[2].width, together[2].height, together[2].mode) == (31, 17, "L")
