"""examples/plugin's multi-label task after export, with no edit of mlcycle: predict.py and the
server answer its declared output form (the labels at or above the threshold), the store keeps
each answer, and the monitor summarizes and compares it.

The plugin is pip-installed as test_plugin.py installs it (its fixture and helpers); it trains
for one epoch on a tiny manifest. Serving and monitoring need only the exported files, so they
run in this process, without the plugin.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
from plugin_helpers import script, train_plugin, write_manifest
from serve_helpers import start

from mlcycle.commands.monitor import main as monitor_main


@pytest.fixture(scope="module")
def exported(plugin_path, tmp_path_factory) -> tuple[Path, Path]:
    """A one-epoch multi-label run, exported; and its data folder."""
    base = tmp_path_factory.mktemp("plugin_serve")
    manifest = write_manifest(base / "data", per_combination=8)
    run = base / "run"
    done = train_plugin(
        plugin_path, manifest, run, "--data.test_fraction=0", "--trainer.max_epochs=1"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    done = script(plugin_path, "scripts/export.py", "--run", str(run), "--format", "onnx")
    assert done.returncode == 0, done.stderr[-3000:]
    return run, base / "data"


def labels_over(result: dict) -> list[str]:
    return [k for k, p in result["probabilities"].items() if p >= result["threshold"]]


def test_the_plugins_labels_are_served_stored_and_monitored(exported, plugin_path, tmp_path):
    run, data = exported
    model = run / "export" / "model.onnx"
    meta = json.loads((model.parent / "model.json").read_text())
    assert meta["task"] == "multilabel" and meta["output"]["kind"] == "labels"
    reference = json.loads((model.parent / "reference.json").read_text())
    assert reference["kind"] == "labels" and reference["task"] == "multilabel"
    summary = reference["predictions"]
    assert set(summary["labels"]) == {"blob", "h", "v"}
    assert sum(summary["classes"].values()) == summary["images"] > 0

    images = sorted((data / "img").glob("*.png"))
    done = script(plugin_path, "scripts/predict.py", str(model), *map(str, images))
    assert done.returncode == 0, done.stderr
    printed = [json.loads(line) for line in done.stdout.splitlines()]

    running, served, store = start(model, tmp_path / "store")
    assert served.form.name == "labels" and served.task == "multilabel"
    with running:
        client = running.client()
        answers = []
        for first in range(0, len(images), 16):
            chunk = [(p.name, p.read_bytes()) for p in images[first : first + 16]]
            response = client.predict_files(chunk)
            assert response.status == 200, response.body
            answers += response.json()["results"]
        card = client.get("/v1/model").json()
        first = answers[0]
        given = {"prediction_id": first["prediction_id"], "label": "h|v"}
        assert client.post_json("/v1/feedback", given).status == 200  # any label: not a class
        store.flush()
        rows = {row["id"]: row for row in store.rows()}
    assert card["task"] == "multilabel" and card["output_form"] == "labels"
    assert len(answers) == len(printed) == len(images)
    for answer, line in zip(answers, printed, strict=True):
        assert answer["threshold"] == line["threshold"] == 0.5
        assert answer["labels"] == labels_over(answer) == line["labels"]
        assert answer["probabilities"] == line["probabilities"]
        row = rows[answer["prediction_id"]]
        assert row["predicted"] == (",".join(answer["labels"]) or "(none)")
        assert row["confidence"] is None and json.loads(row["top_k"]) == answer["probabilities"]
    assert rows[first["prediction_id"]]["label"] == "h|v"

    out, printed_lines = tmp_path / "monitor", io.StringIO()
    code = 0
    with contextlib.redirect_stdout(printed_lines):
        try:
            monitor_main(["--db", store.url, "--run", str(run), "--out", str(out)])
        except SystemExit as exc:  # 1: a threshold crossed, which a one-epoch model may do
            code = exc.code
    assert code in (0, 1), printed_lines.getvalue()
    report = json.loads((out / "monitor.json").read_text())
    assert report["reference"]["kind"] == "labels"
    assert report["reference_predictions"]["classes"] == summary["classes"]
    (window,) = report["windows"]
    assert window["rows"] == len(images) and window["judged"]
    checks = {c["check"] for c in window["checks"]}
    assert {"input_psi", "class_chi2", "class_psi"} <= checks
    assert not checks & {"confidence_ks", "accuracy"}  # labels have no confidence or accuracy
    assert (out / "monitor.html").read_text().count("data:image/png;base64,") == 4
