"""The prediction store, and predict.py recording batch predictions into it."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import timedelta

import numpy as np
import pytest
import sqlalchemy as sa
from export_helpers import PREDICT, ROOT, exported_run

from mlcycle.serve.stats import image_stats
from mlcycle.serve.store import PredictionStore, now, prediction_row


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    return exported_run(tmp_path_factory)


def row(i: int, **extra) -> dict:
    return prediction_row(
        model_version="v1",
        source="test",
        input_sha256=f"{i:064d}",
        predicted=str(i % 3),
        confidence=0.9,
        top_k=[{"class": str(i % 3), "probability": 0.9}],
        **extra,
    )


def test_rows_from_many_threads_are_all_written_and_feedback_joins(store_url):
    store = PredictionStore(store_url, batch_size=16).start()
    rows = [row(i) for i in range(400)]

    def add(part):
        for r in part:
            store.add(r)

    threads = [threading.Thread(target=add, args=(rows[k::8],)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.flush()
    assert store.count() == 400
    assert store.add_feedback(rows[5]["id"], "2") and not store.add_feedback("nope", "1")
    store.close()
    again = PredictionStore(store_url)
    assert again.count("v1") == 400 and again.count("v2") == 0
    labelled = {r["id"]: r["label"] for r in again.rows()}
    assert labelled[rows[5]["id"]] == "2" and labelled[rows[6]["id"]] is None
    assert again.predicted_hashes("v1", [f"{5:064d}", "x"]) == {f"{5:064d}"}
    later = again.rows(since=now() + timedelta(hours=1))
    assert later == []


def test_a_failing_database_never_raises_into_the_caller(store_url):
    store = PredictionStore(store_url).start()
    store.add({"id": "x"})  # missing required columns: the write fails, the caller goes on
    store.add(row(1))
    store.close()
    assert store.errors and "IntegrityError" in store.errors[0]


def test_image_stats_see_brightness_and_contrast():
    flat = np.full((8, 10, 3), 100, np.uint8)
    stats = image_stats(flat)
    assert stats["brightness"] == pytest.approx(100) and stats["contrast"] == 0
    assert stats["aspect_ratio"] == pytest.approx(1.25) and stats["pixels"] == 80
    noisy = np.random.default_rng(0).integers(0, 256, (8, 10), dtype=np.uint8)
    assert image_stats(noisy)["contrast"] > 50 and image_stats(noisy)["saturation"] == 0


def predict(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(PREDICT), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_predict_records_batches_and_skips_what_it_already_predicted(exported, tmp_path):
    run, _, _ = exported
    model = run / "export" / "model.onnx"
    images = run.parent / "images"
    count = len(list(images.rglob("*.png")))
    url = f"sqlite:///{tmp_path / 'preds.db'}"
    first = predict(str(model), str(images), "--db", url, "--skip-predicted")
    assert first.returncode == 0, first.stderr
    assert f"recorded {count} prediction(s)" in first.stderr
    assert first.stdout.count("prediction_id") == count
    second = predict(str(model), str(images), "--db", url, "--skip-predicted")
    assert second.returncode == 0 and f"skipped {count} image(s)" in second.stderr
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT * FROM predictions")).mappings().all()
    assert len(rows) == count
    assert {r["source"] for r in rows} == {"batch"} and all(r["brightness"] > 0 for r in rows)
    assert all(r["width"] == 20 and r["predicted"] for r in rows)

    # a SQL query as the input: the new images only
    table = tmp_path / "queue.db"
    queue = sa.create_engine(f"sqlite:///{table}")
    new = sorted(images.rglob("*.png"))[:3]
    with queue.begin() as connection:
        connection.execute(sa.text("CREATE TABLE incoming (path TEXT)"))
        for path in new:
            connection.execute(sa.text("INSERT INTO incoming VALUES (:p)"), {"p": str(path)})
    query = ["--query", "SELECT path FROM incoming", "--query-url", f"sqlite:///{table}"]
    third = predict(str(model), *query)
    assert third.returncode == 0 and len(third.stdout.splitlines()) == 3
    bad = predict(
        str(model), "--query", "SELECT nope FROM incoming", "--query-url", f"sqlite:///{table}"
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and "--query" in bad.stderr
    alone = predict(str(model), str(images), "--skip-predicted")
    assert alone.returncode == 2 and "needs --db" in alone.stderr
