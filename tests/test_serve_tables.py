"""Serving a table model: JSON rows and CSV uploads answered row by row (a bad row gets its own
error, the others are scored), the schema in /v1/model and on the page, the store's ``inputs``
JSON, feedback, a fuzz of table payloads, and predict.py --db / --skip-predicted for CSV rows."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from serve_helpers import Running, multipart
from test_serve_fuzz import assert_error_shape, json_values, send
from test_tables_export import export
from test_tables_models import learnable_table, train

from mlcycle.edge.model import read_meta
from mlcycle.edge.predict_rows import predict_table, table_session
from mlcycle.serve.app import create_app
from mlcycle.serve.server import load_served
from mlcycle.serve.service import Settings
from mlcycle.serve.store import PredictionStore, default_url

FEATURES = ["x1", "x2", "colour", "flag", "day"]


@pytest.fixture(scope="module")
def table_model(tmp_path_factory):
    """A random forest on the learnable table, exported: (model.onnx, the table's CSV)."""
    folder = tmp_path_factory.mktemp("served_table")
    table = learnable_table(folder / "rows.csv")
    run = train(
        folder,
        table,
        "label",
        "--model.class_path=mlcycle.tables.ClassicTabularTask",
        "--model.estimator=random_forest",
        "--model.params={n_estimators: 20}",
        "--trainer.max_epochs=1",
    )
    export(run)
    return run / "export" / "model.onnx", table


@pytest.fixture
def served(table_model, tmp_path):
    model = load_served(table_model[0], threads=1)
    store = PredictionStore(default_url(tmp_path))
    return Running(create_app(model, store, Settings(max_images=4))), store


def rows_of(table, count: int) -> list[dict]:
    frame = pd.read_csv(table).head(count).drop(columns=["label", "value"])
    frame = frame.astype(object).where(frame.notna(), None)
    return frame.to_dict("records")


def canonical_sha(inputs: dict) -> str:
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def test_json_rows_are_answered_and_each_bad_row_gets_its_own_error(served, table_model, tmp_path):
    running, store = served
    rows = rows_of(table_model[1], 6)
    rows[1]["x1"] = "lots"  # a word in a number column
    del rows[2]["colour"]  # a missing column
    rows[3]["flag"] = "maybe"  # not true/false
    rows[4]["extra"] = 1  # an extra column is ignored
    with running:
        client = running.client()
        answer = client.post_json("/v1/predict", {"rows": rows})
        listed = client.post_json("/v1/predict", rows[:1])  # a bare list of rows works too
    assert answer.status == 200, answer.body
    results = answer.json()["results"]
    assert [r["name"] for r in results] == [r["row_id"] for r in rows]
    assert "column 'x1': 'lots' is not a number" in results[1]["error"]
    assert "no column 'colour' (categorical)" in results[2]["error"]
    assert "column 'flag': 'maybe' is not true/false" in results[3]["error"]
    scored = [results[i] for i in (0, 4, 5)]
    assert all(r["class"] in ("high", "low", "mid") and r["prediction_id"] for r in scored)
    assert listed.status == 200 and listed.json()["results"][0]["class"] == results[0]["class"]
    # the same numbers predict.py prints for these rows
    good = pd.DataFrame([rows[i] for i in (0, 4, 5)]).drop(columns=["extra"])
    good.to_csv(tmp_path / "good.csv", index=False)
    meta = read_meta(table_model[0])
    printed = predict_table(table_session(table_model[0]), meta, tmp_path / "good.csv", 32)
    for got, want in zip(scored, printed, strict=True):
        assert got["class"] == want["class"]
        assert np.allclose(
            list(got["probabilities"].values()), list(want["probabilities"].values()), atol=1e-6
        )
    kept = store.rows()
    assert len(kept) == 4  # three rows and the listed one; the bad rows are not stored


def test_a_csv_upload_scores_its_rows_and_names_the_bad_one(served, table_model):
    running, _ = served
    frame = pd.read_csv(table_model[1]).head(5).drop(columns=["label", "value"])
    frame = frame.astype({"x2": object})
    frame.loc[2, "x2"] = "n/a?"
    body, content_type = multipart([("rows.csv", frame.to_csv(index=False).encode())])
    missing, missing_type = multipart(
        [("rows.csv", frame.drop(columns=["day"]).to_csv(index=False).encode())]
    )
    with running:
        client = running.client()
        answer = client.request("POST", "/v1/predict", body, {"Content-Type": content_type})
        no_day = client.request("POST", "/v1/predict", missing, {"Content-Type": missing_type})
    assert answer.status == 200, answer.body
    results = answer.json()["results"]
    assert [r["name"] for r in results] == list(frame["row_id"])
    assert [r["row"] for r in results] == [1, 2, 3, 4, 5]
    assert "column 'x2': 'n/a?' is not a number" in results[2]["error"]
    assert sum("class" in r for r in results) == 4
    assert no_day.status == 400 and "no column 'day' (datetime)" in no_day.json()["error"]


def test_a_semicolon_cp1252_upload_reads_as_the_comma_one(served, table_model):
    """Excel in much of Europe: ';' and cp1252 (a 'é' in the id column); the rows read and score
    as the same rows sent with ','."""
    running, _ = served
    frame = pd.read_csv(table_model[1]).head(4).drop(columns=["label", "value"])
    frame["row_id"] = [f"caf\u00e9-{i}" for i in range(len(frame))]
    comma, comma_type = multipart([("rows.csv", frame.to_csv(index=False).encode())])
    text = frame.to_csv(index=False, sep=";").encode("cp1252")
    semi, semi_type = multipart([("rows.csv", text)])
    with running:
        client = running.client()
        want = client.request("POST", "/v1/predict", comma, {"Content-Type": comma_type})
        got = client.request("POST", "/v1/predict", semi, {"Content-Type": semi_type})
    assert want.status == 200 and got.status == 200, got.body
    mine, theirs = got.json()["results"], want.json()["results"]
    assert [r["name"] for r in mine] == list(frame["row_id"])
    assert all("error" not in r for r in mine)
    assert [r.get("class") for r in mine] == [r.get("class") for r in theirs]


def test_the_schema_is_in_the_model_card_and_the_page(served):
    running, _ = served
    with running:
        client = running.client()
        card = client.get("/v1/model").json()
        page = client.get("/").body.decode()
    assert card["input"]["kind"] == "table" and card["output_form"] == "table"
    columns = card["input"]["columns"]
    assert [c["name"] for c in columns] == FEATURES
    assert [c["kind"] for c in columns] == ["numeric", "numeric", "categorical", "boolean", "datetime"]  # fmt: skip
    assert card["input"]["id_column"] == "row_id" and card["class_names"] == ["high", "low", "mid"]
    for name in FEATURES:
        assert f'name="{name}"' in page
    assert 'id="row-form"' in page and 'accept=".csv,text/csv"' in page
    assert 'accept="image/*"' not in page


def test_bodies_that_are_not_rows_are_a_4xx_never_a_5xx(served):
    running, store = served
    rng = np.random.default_rng(7)
    bad = [b"{", b"5", b'"rows"', b"{}", b"[]", b'{"rows": 3}', b'{"rows": []}', b"null"]
    bad += [json.dumps({"images": [{"data": "AAAA"}]}).encode(), b'{"rows": [1, 2]}']
    statuses: Counter[int] = Counter()
    with running:
        client = running.client()
        for body in bad:
            response = client.post_json("/v1/predict", body)
            assert 400 <= response.status < 500, (body, response.body)
            assert isinstance(response.json()["error"], str)
        for _ in range(15):  # every column given values of the wrong type, and broken rows
            row = {name: value for name, value in zip(FEATURES, json_values(rng), strict=False)}
            for body in ({"rows": [row]}, [row, None], {"rows": [row], "x": 1}, [[row]]):
                response = send(client, "POST", "/v1/predict", json.dumps(body).encode(), {"Content-Type": "application/json"})  # fmt: skip
                statuses[response.status] += 1
                assert response.status < 500, (body, response.body[:300])
                if response.status >= 400:
                    assert_error_shape(response)
        assert client.get("/ready").status == 200
    assert statuses[400] + statuses[422] > 0 and not store.errors


def test_store_rows_keep_the_features_as_json_and_feedback_joins(served, table_model):
    running, store = served
    rows = rows_of(table_model[1], 3)
    rows[0]["x2"] = None
    with running:
        client = running.client()
        results = client.post_json("/v1/predict", {"rows": rows}).json()["results"]
        pid = results[0]["prediction_id"]
        ok = client.post_json("/v1/feedback", {"prediction_id": pid, "label": "low"})
        not_a_class = client.post_json("/v1/feedback", {"prediction_id": pid, "label": "big"})
    assert ok.status == 200 and not_a_class.status == 400
    kept = {r["id"]: r for r in store.rows()}
    first = kept[pid]
    inputs = json.loads(first["inputs"])
    assert list(sorted(inputs)) == sorted(FEATURES)
    assert inputs["x1"] == rows[0]["x1"] and inputs["x2"] is None
    assert inputs["colour"] == rows[0]["colour"] and inputs["flag"] in (0.0, 1.0)
    assert inputs["day"].startswith(rows[0]["day"])
    assert (
        first["input_sha256"] == canonical_sha(inputs) and first["input_name"] == rows[0]["row_id"]
    )
    assert first["width"] is None and first["mode"] is None and first["brightness"] is None
    assert first["predicted"] == results[0]["class"] and first["label"] == "low"
    assert first["confidence"] == pytest.approx(results[0]["confidence"])
    assert json.loads(first["top_k"])[0]["class"] == results[0]["class"]
    assert first["latency_ms"] > 0 and first["source"] == "api"


def predict(*argv: str) -> tuple[int, str, str]:
    from mlcycle.commands.predict import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_predict_db_stores_csv_rows_and_skip_predicted_skips_them(table_model, tmp_path):
    model, table = table_model
    frame = pd.read_csv(table).head(8).drop(columns=["label", "value"])
    frame.head(5).to_csv(tmp_path / "first.csv", index=False)
    frame.to_csv(tmp_path / "all.csv", index=False)
    url = f"sqlite:///{tmp_path / 'p.db'}"
    code, out, err = predict(str(model), "--csv", str(tmp_path / "first.csv"), "--db", url)
    assert code == 0, err
    assert "recorded 5 prediction(s)" in err
    printed = [json.loads(line) for line in out.splitlines()]
    assert all(p["prediction_id"] for p in printed)
    code, out, err = predict(
        str(model), "--csv", str(tmp_path / "all.csv"), "--db", url, "--skip-predicted"
    )
    assert code == 0, err
    assert "skipped 5 row(s)" in err and "recorded 3 prediction(s)" in err
    assert [json.loads(line)["row_id"] for line in out.splitlines()] == list(frame["row_id"][5:])
    store = PredictionStore(url)
    kept = store.rows()
    assert len(kept) == 8 and {r["source"] for r in kept} == {"predict"}
    assert sorted(r["input_name"] for r in kept) == sorted(frame["row_id"])
    assert all(r["input_sha256"] == canonical_sha(json.loads(r["inputs"])) for r in kept)
    store.close()
    code, _, err = predict(str(model), "--csv", str(tmp_path / "all.csv"), "--skip-predicted")
    assert code == 2 and "--skip-predicted needs --db" in err


def test_an_old_store_without_inputs_gets_the_column(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "CREATE TABLE predictions (id VARCHAR(36) PRIMARY KEY, time DATETIME NOT NULL, "
                "model_version VARCHAR(64) NOT NULL, source VARCHAR(16) NOT NULL, input_name TEXT, "
                "input_sha256 VARCHAR(64) NOT NULL, predicted TEXT, confidence FLOAT, top_k TEXT, "
                "latency_ms FLOAT, width INTEGER, height INTEGER, mode VARCHAR(16))"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO predictions (id, time, model_version, source, input_sha256, "
                "predicted) VALUES ('old', '2024-01-01 00:00:00', 'v0', 'api', 'abc', 'cat')"
            )
        )
    engine.dispose()
    store = PredictionStore(url)
    kept = store.rows()
    store.close()
    assert [(r["id"], r["predicted"], r["inputs"]) for r in kept] == [("old", "cat", None)]
