"""compare.py takes a task through its kind of comparison only: the built-in kinds walk the
registry, a task that declares none is refused in one line, and examples/plugin's multi-label
task, pip-installed with its ``mlcycle.comparisons`` entry point (no edit of mlcycle), is
cross-validated on folds stratified by label set."""

from __future__ import annotations

import csv
import json
from collections import Counter

import pytest
import yaml
from plugin_helpers import COMBINATIONS, CONFIG, script, write_manifest

from mlcycle.core.errors import UserError
from mlcycle.selection.compare.comparison import Comparison
from mlcycle.selection.compare.kinds import COMPARISONS, comparison_kind
from mlcycle.selection.ensemble.kinds import ENSEMBLES


class Unregistered:
    """A task class that declares no kind of comparison."""

    task_name = "nothing_registered"


def test_every_registered_kind_is_a_comparison_and_every_ensemble_a_builder():
    assert {"classification", "segmentation", "detection", "tabular"} <= set(COMPARISONS)
    for name in COMPARISONS:
        kind = COMPARISONS.get(name)
        assert issubclass(kind, Comparison), name
        assert kind.unit != Comparison.unit, f"{name}: a kind names its pool rows"
    assert {"classification", "tabular"} <= set(ENSEMBLES)
    assert all(callable(ENSEMBLES.get(name)) for name in ENSEMBLES)


def test_a_task_without_a_kind_of_comparison_is_refused_in_one_line():
    config = {"model": {"class_path": f"{__name__}.Unregistered"}}
    with pytest.raises(UserError, match="declares no way to be cross-validated") as found:
        comparison_kind(config)
    assert "mlcycle.comparisons" in str(found.value) and "classification" in str(found.value)
    assert comparison_kind(config, required=False) is Comparison  # its monitor still answers


@pytest.mark.slow
def test_compare_cross_validates_the_plugin_task(plugin_path, tmp_path):
    manifest = write_manifest(tmp_path / "data", per_combination=12)
    spec = {
        "train": [str(CONFIG)],
        "args": [
            f"--data.manifest={manifest}",
            "--data.image_size=16",
            "--data.batch_size=16",
            "--data.val_fraction=0.25",
            "--data.test_fraction=0.2",
            "--trainer.max_epochs=1",
            "--trainer.accelerator=cpu",
            "--model.arch_options={width: 4, blocks: 2}",
        ],
        "folds": 2,
        "candidates": [{"name": "slow", "args": []}, {"name": "fast", "args": ["--model.lr=0.01"]}],
    }
    config = tmp_path / "compare.yaml"
    config.write_text(yaml.safe_dump(spec))
    out = tmp_path / "out"
    done = script(plugin_path, "scripts/compare.py", "--config", str(config), "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((out / "leaderboard.json").read_text())
    assert summary["metric"] == "val/f1" and summary["mode"] == "max"  # the task's monitor
    rows = {r["candidate"]: r for r in summary["rows"]}
    assert set(rows) == {"slow", "fast"}
    for row in rows.values():
        assert row["mean"] is not None and 0 <= row["mean"] <= 1, row
        assert len(row["folds"]) == 2 and row["params"] > 0
    # folds stratified by label set: every combination in both folds, the test split sealed
    with (out / "folds.csv").open() as fh:
        folds = Counter((r["label"], r["fold"]) for r in csv.DictReader(fh))
    assert {label for label, _ in folds} == set(COMBINATIONS)
    assert all(folds[(label, fold)] > 0 for label in COMBINATIONS for fold in ("0", "1"))
    record = json.loads((out / "comparison.json").read_text())
    assert record["test_images_sealed"] > 0
    # each candidate-fold is a run of the plugin's task, scored by its own val metrics
    fold = out / "candidates" / "fast" / "fold1"
    metrics = json.loads((fold / "metrics.json").read_text())
    scores = json.loads((fold / "selection_fold.json").read_text())["scores"]
    assert scores["f1"] == pytest.approx(metrics["val/f1"]) and "exact_match" in scores
    assert (out / "leaderboard.html").read_text().count("data:image/png;base64") >= 1
