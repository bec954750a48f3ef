"""Tables through monitoring, the model card and retraining: export writes reference.json with
per-column entries; monitor.py flags the shifted column first, an unseen category, and passes
an unshifted window; report.py writes a card of a table run; retrain.py decides between two
table runs. One random forest run (seconds), exported once for the module."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import sqlalchemy as sa
from test_tables_models import learnable_table, train

from mlcycle.edge.rows import read_rows, table_inputs
from mlcycle.monitor.judge import monitor
from mlcycle.monitor.reference import model_version
from mlcycle.monitor.report import write_outputs
from mlcycle.serve.store import PREDICTIONS, prediction_row

FOREST = (
    "--model.class_path=mlcycle.tables.ClassicTabularTask",
    "--model.estimator=random_forest",
    "--model.params={n_estimators: 30}",
    "--trainer.max_epochs=1",
)


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    return learnable_table(tmp_path_factory.mktemp("table") / "rows.csv")


@pytest.fixture(scope="module")
def exported(tmp_path_factory, table) -> Path:
    from mlcycle.export.run_export import ExportOptions, export_run

    run = train(tmp_path_factory.mktemp("forest"), table, "label", *FOREST)
    with contextlib.redirect_stdout(io.StringIO()):
        export_run(ExportOptions(run=str(run), format=["onnx"]))
    return run


def test_export_writes_a_reference_per_column(exported):
    meta = json.loads((exported / "export" / "model.json").read_text())
    assert meta["reference"] == "reference.json"
    ref = json.loads((exported / "export" / "reference.json").read_text())
    assert ref["input_kind"] == "table" and ref["kind"] == "table"
    train_columns = ref["splits"]["train"]["columns"]
    assert set(train_columns) == {"x1", "x2", "colour", "flag", "day"}
    assert train_columns["x1"]["distribution"]["count"] == ref["splits"]["train"]["rows"]
    assert len(train_columns["x1"]["distribution"]["edges"]) > 5
    assert set(train_columns["colour"]["frequencies"]) == {"red", "green", "blue"}
    assert set(train_columns["flag"]["frequencies"]) == {"true", "false"}
    assert 0 < train_columns["x2"]["missing_rate"] < 0.15  # 12 of 360 rows are blank
    assert ref["splits"]["val"]["columns"]["day"]["distribution"]["count"] > 0
    predictions = ref["predictions"]
    assert sum(predictions["classes"].values()) == ref["splits"]["val"]["rows"]
    assert 0.5 < predictions["accuracy"] <= 1 and predictions["confidence"]["count"] > 0
    ranked = [c["name"] for c in ref["columns"]]
    # label follows x1 and colour; x2 and day are noise
    assert set(ranked[:2]) == {"x1", "colour"}
    assert ref["columns"][0]["importance"] > ref["columns"][-1]["importance"]


def _inputs(frame: pd.DataFrame) -> list[dict]:
    """The store's ``inputs`` of each row: numbers as numbers, missing as null."""
    rows = []
    for record in frame.to_dict("records"):
        rows.append(
            {
                "x1": record["x1"],
                "x2": None if pd.isna(record["x2"]) else record["x2"],
                "colour": record["colour"],
                "flag": 1.0 if record["flag"] == "yes" else 0.0,
                "day": pd.Timestamp(record["day"]).isoformat(),
            }
        )
    return rows


def _predicted(model: Path, frame: pd.DataFrame) -> tuple[list[str], list[float]]:
    meta = json.loads((model.parent / "model.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        frame.to_csv(Path(tmp) / "rows.csv", index=False)
        feeds, kept, _ = table_inputs(*read_rows(Path(tmp) / "rows.csv"), meta["input"])
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    probs = session.run(None, feeds)[0]
    assert len(kept) == len(frame)
    names = meta["class_names"]
    return [names[i] for i in probs.argmax(axis=1)], [round(float(p), 6) for p in probs.max(axis=1)]


def _store(url: str) -> sa.Table:
    """The predictions table with ``inputs`` (serve/store.py's, or its columns plus inputs)."""
    engine = sa.create_engine(url)
    if "inputs" in PREDICTIONS.c:
        table = PREDICTIONS
    else:
        columns = [
            sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
            for c in PREDICTIONS.columns
        ]
        table = sa.Table("predictions", sa.MetaData(), *columns, sa.Column("inputs", sa.Text))
    table.metadata.create_all(engine)
    engine.dispose()
    return table


def _write_window(url: str, table: sa.Table, model: Path, frame: pd.DataFrame, day: int) -> None:
    predicted, confidence = _predicted(model, frame)
    start = datetime(2024, 5, day, tzinfo=timezone.utc)
    version = model_version(model)
    rows = []
    for i, (inputs, name, conf) in enumerate(
        zip(_inputs(frame), predicted, confidence, strict=True)
    ):
        row = prediction_row(time=start + timedelta(minutes=i), model_version=version,
                             source="api", input_sha256=f"{day}-{i}", predicted=name,
                             confidence=conf)  # fmt: skip
        row["inputs"] = json.dumps(inputs)
        rows.append(row)
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(table.insert(), rows)
    engine.dispose()


def test_monitor_flags_the_shifted_column_first_and_an_unseen_category(exported, tmp_path):
    model = exported / "export" / "model.onnx"
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    table = _store(url)
    fresh = pd.read_csv(learnable_table(tmp_path / "fresh.csv", rows=600, seed=1))
    same, shifted, unseen = fresh.iloc[:200], fresh.iloc[200:400].copy(), fresh.iloc[400:].copy()
    shifted["x2"] = shifted["x2"] + 3.0  # a noise column moves: the model does not notice
    rng = np.random.default_rng(0)
    unseen.loc[rng.random(len(unseen)) < 0.3, "colour"] = "purple"
    for day, frame in ((1, same), (2, shifted), (3, unseen)):
        _write_window(url, table, model, frame, day)

    report = monitor(url, model, window="1d")
    windows = [w for w in report["windows"] if w["rows"]]
    assert [w["rows"] for w in windows] == [200, 200, 200]
    assert report["reference"]["input_kind"] == "table"
    assert set(report["reference"]["inputs"]) == {"x1", "x2", "colour", "flag", "day"}
    clean, moved, new = windows
    assert not clean["flagged"], [c for c in clean["checks"] if c["flagged"]]
    assert moved["flagged"] and moved["moved"][0]["input"] == "x2"
    assert "input_psi" in moved["moved"][0]["checks"]
    first = next(c for c in moved["checks"] if c["flagged"])
    assert first["subject"] == "x2"
    found = next(c for c in new["checks"] if c["check"] == "input_unseen")
    assert found["subject"] == "colour" and found["flagged"] and found["unseen"] == ["purple"]
    assert 0.2 < found["value"] < 0.4

    json_path, html_path = write_outputs(report, tmp_path / "monitor")
    page = html_path.read_text()
    assert "inputs that moved" in page and "x2" in page
    assert json.loads(json_path.read_text())["windows"]


def test_report_writes_a_card_of_a_table_run(exported, tmp_path):
    from mlcycle.commands.report import main

    out = tmp_path / "card.html"
    with contextlib.redirect_stdout(io.StringIO()):
        main(["--run", str(exported), "--out", str(out)])
    page = out.read_text()
    assert "random_forest" in page and "feature columns" in page
    assert "small_cnn" not in page and "channel(s)" not in page
    assert "val rows" in page  # the export's check, on rows


def test_retrain_decides_between_table_runs(exported, table, tmp_path):
    from mlcycle.commands.retrain import main

    challenger = train(
        tmp_path, table, "label",
        "--model.class_path=mlcycle.tables.ClassicTabularTask",
        "--model.estimator=logistic_regression", "--trainer.max_epochs=1",
    )  # fmt: skip
    args = ["--champion", str(exported), "--challenger", str(challenger)]
    args += ["--registry", str(tmp_path / "registry.json")]
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            main(args)
        except SystemExit as exc:  # 3: the champion kept
            assert exc.code == 3
    decision = json.loads((challenger / "retrain" / "decision.json").read_text())
    assert decision["holdout"]["images"] > 30  # the challenger's test rows
    assert isinstance(decision["decision"]["promote"], bool)
    assert decision["decision"]["metric"] == "f1"
    for who in ("champion", "challenger"):
        assert 0.3 < decision[who]["metrics"]["f1"] <= 1
    registry = json.loads((tmp_path / "registry.json").read_text())
    assert len(registry["versions"]) == 2
