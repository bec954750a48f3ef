"""evaluate.py on a trained run: metrics files, galleries and the test-set ledger."""

from __future__ import annotations

import json

import pytest

from mlcycle.commands.evaluate import main


def test_evaluate_val_writes_metrics_and_figures(trained_run, capsys):
    result = main(["--run", str(trained_run), "--split", "val"])
    saved = json.loads((trained_run / "eval_val.json").read_text())
    val = (trained_run / "splits.csv").read_text().count(",val\n")
    assert saved["images"] == result["images"] == val > 0
    assert set(saved["per_class"]) == {"blob", "stripes_h", "stripes_v"}
    assert sum(row["support"] for row in saved["per_class"].values()) == val
    assert sum(map(sum, saved["confusion_matrix"])) == val
    assert 0 <= saved["metrics"]["f1"] <= 1 and saved["checkpoint"] == "checkpoints/best.ckpt"
    # The f1 of best.ckpt on val is the one training recorded for it.
    recorded = json.loads((trained_run / "metrics.json").read_text())
    assert saved["metrics"]["f1"] == pytest.approx(recorded["val/f1"], abs=1e-4)
    # Per class too: evaluation and training share one metric definition.
    for name, row in saved["per_class"].items():
        assert row["f1"] == pytest.approx(recorded[f"val/f1/{name}"], abs=1e-4)
        assert 0 <= row["precision"] <= 1 and 0 <= row["recall"] <= 1
    for name in ("confusion_matrix_val.png", "misclassified_val.png"):
        assert (trained_run / name).stat().st_size > 1000
    assert f"val: {val} images" in capsys.readouterr().out


def test_test_split_reuse_is_recorded_and_warned(trained_run, capsys):
    ledger = trained_run / "test_ledger.jsonl"
    before = len(ledger.read_text().splitlines()) if ledger.exists() else 0
    main(["--run", str(trained_run), "--split", "test"])
    first = capsys.readouterr().err
    main(["--run", str(trained_run), "--split", "test"])
    second = capsys.readouterr().err
    entries = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert len(entries) == before + 2
    assert entries[-1]["command"] == f"evaluate.py --run {trained_run} --split test"
    assert "f1" in entries[-1]["metrics"]
    assert entries[-1]["test_split_sha256"] == entries[-2]["test_split_sha256"]
    assert len(entries[-1]["test_split_sha256"]) == 64
    assert ("warning" in first) == (before > 0)
    assert "evaluated" in second and "times" in second


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--run", "/no/such/run"], "does not exist"),
        (["--run", ".", "--split", "val"], "config.yaml"),
        (["--split", "val"], "--run"),
        (
            ["--run", "x", "--split", "train"],
            "key 'split': expected one of 'val', 'test', got 'train'",
        ),
    ],
)
def test_evaluate_errors(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_missing_checkpoint(trained_run, tmp_path, capsys):
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "config.yaml").write_text((trained_run / "config.yaml").read_text())
    with pytest.raises(SystemExit):
        main(["--run", str(copy)])
    assert "no best checkpoint" in capsys.readouterr().err


def test_evaluators_are_found_by_task_name():
    from mlcycle.evaluators import EVALUATORS, evaluator_for
    from mlcycle.tasks.segmentation import SegmentationTask

    task = SegmentationTask(num_classes=2, in_channels=1, arch_options={"width": 4})
    assert evaluator_for(task) is EVALUATORS.get("segmentation")
