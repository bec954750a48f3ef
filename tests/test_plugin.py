"""examples/plugin, pip-installed, extends mlcycle through entry points only: its architecture,
data source and multi-label task train, evaluate, export and predict through the scripts.

The plugin is installed with pip (no index, no build isolation: nothing is downloaded) into a
folder of its own that the scripts' subprocesses find on ``PYTHONPATH``; the shared virtual
environment is left as it was, so no other test sees the plugin.
"""

from __future__ import annotations

import json

import pytest
from plugin_helpers import script, train_plugin, write_manifest


def test_the_plugin_registers_through_entry_points_only(plugin_path, tmp_path):
    manifest = write_manifest(tmp_path / "data", per_combination=2)
    probe = f"""
import json
from mlcycle.data.sources import SOURCES, load_samples
from mlcycle.evaluators import EVALUATORS
from mlcycle.export.exporters import EXPORTS
from mlcycle.models.registry import CLASSIFICATION_MODELS
from mlcycle.tasks.base import TASKS
import torch
model = CLASSIFICATION_MODELS.get("tiny_dwnet")(3, 5, width=4, blocks=2)
found = load_samples("jsonl", manifest={str(manifest)!r}, path_column="path", label_column="label")
print(json.dumps({{
    "names": [n in r for n, r in [("tiny_dwnet", CLASSIFICATION_MODELS), ("jsonl", SOURCES),
              ("multilabel", TASKS), ("multilabel", EVALUATORS), ("multilabel", EXPORTS)]],
    "shape": list(model(torch.zeros(2, 3, 13, 17)).shape),
    "labels": sorted({{s.label for s in found.samples}}),
    "meta": found.samples[0].meta,
    "skipped": found.skipped,
    "layout": found.layout,
}}))
"""
    done = script(plugin_path, "-c", probe)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["names"] == [True] * 5
    assert got["shape"] == [2, 5]
    assert got["labels"] == ["blob", "blob|h", "h", "h|v", "v"]  # lists sorted and joined
    assert got["meta"] == {"source": "generated"}
    reasons = [reason for _, reason in got["skipped"]]
    assert reasons[0].startswith("line 4: path leaves the data root")
    assert reasons[1].startswith("line 6: not JSON")
    assert reasons[2] == "line 8: empty label"
    assert got["layout"] == "JSON-lines manifest labels.jsonl"


@pytest.mark.slow
def test_a_plugin_task_trains_evaluates_exports_and_predicts(plugin_path, tmp_path):
    manifest = write_manifest(tmp_path / "data")
    run = tmp_path / "run"
    done = train_plugin(
        plugin_path,
        manifest,
        run,
        "--data.test_fraction=0.25",
        "--trainer.max_epochs=15",
        "--model.lr=0.01",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "finished" and metrics["monitor"] == "val/f1"
    assert {"val/f1", "val/exact_match", "val/f1/blob", "val/f1/h", "val/f1/v"} <= set(metrics)
    assert metrics["val/f1"] > 0.6, metrics  # three easy patterns; chance is about 0.5
    skipped = (run / "skipped_files.csv").read_text()
    assert "line 4: path leaves the data root" in skipped and "line 6: not JSON" in skipped
    config = (run / "config.yaml").read_text()
    assert "MultiLabelTask" in config and "tiny_dwnet" in config and "jsonl" in config

    done = script(plugin_path, "scripts/evaluate.py", "--run", str(run), "--split", "test")
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((run / "eval_test.json").read_text())
    assert report["labels"] == ["blob", "h", "v"]
    splits = (run / "splits.csv").read_text().splitlines()
    assert report["images"] == sum(line.endswith(",test") for line in splits) > 0
    assert {"f1", "precision", "recall", "exact_match", "hamming", "loss"} <= set(report["metrics"])
    assert set(report["per_label"]) == {"blob", "h", "v"}
    assert "f1 " in done.stdout

    done = script(plugin_path, "scripts/export.py", "--run", str(run))
    assert done.returncode == 0, done.stderr[-3000:]
    export = run / "export"
    meta = json.loads((export / "model.json").read_text())
    assert meta["task"] == "multilabel"
    assert meta["output"]["kind"] == "labels" and meta["output"]["labels"] == ["blob", "h", "v"]
    assert meta["output"]["sigmoid_applied"] is True
    verification = json.loads((export / "verification.json").read_text())
    assert verification["passed"]
    assert {row["file"] for row in verification["artifacts"]} == {"model.onnx", "model.ts"}
    assert all(row["labels_agree"] == row["images"] for row in verification["artifacts"])

    images = sorted((tmp_path / "data" / "img").glob("3_*.png"))[:4]  # labelled h|v
    done = script(plugin_path, "scripts/predict.py", str(export / "model.onnx"), *map(str, images))
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["path"] for r in results] == [str(p) for p in images]
    for result in results:
        assert set(result["probabilities"]) == {"blob", "h", "v"}
        assert result["threshold"] == 0.5
        present = [k for k, p in result["probabilities"].items() if p >= 0.5]
        assert result["labels"] == present
    assert sum(r["labels"] == ["h", "v"] for r in results) >= 3  # a learned, exported model
