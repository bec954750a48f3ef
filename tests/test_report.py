"""scripts/report.py: the self-contained HTML model card."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from mlcycle.card.stats import bootstrap_macro_f1, macro_f1, wilson

SECTIONS = (
    "intended-use",
    "model",
    "data",
    "metrics",
    "gate",
    "per-class",
    "errors",
    "curves",
    "export",
    "limitations",
)
TEST_FILES = (
    "eval_test.json",
    "test_ledger.jsonl",
    "confusion_matrix_test.png",
    "misclassified_test.png",
)


@pytest.fixture
def run(trained_run, tmp_path) -> Path:
    """A copy of the shared run with an objective it cannot pass, and no test evaluation (other
    tests may have evaluated the shared run on its test split)."""
    copy = tmp_path / "run"
    shutil.copytree(trained_run, copy)
    for name in TEST_FILES:
        (copy / name).unlink(missing_ok=True)
    config = yaml.safe_load((copy / "config.yaml").read_text())
    config["objective"] = {"metric": "val/f1", "min": 0.999, "per_class_min": 0.99}
    (copy / "config.yaml").write_text(yaml.safe_dump(config))
    return copy


def card(run: Path, *args: str) -> str:
    from mlcycle.commands.report import main

    out = main(["--run", str(run), "--resamples", "200", *args])
    return out.read_text()


def test_card_is_self_contained_and_never_reads_the_test_split(run, tmp_path):
    before = sorted(p.name for p in run.iterdir())
    html = card(run, "--out", str(tmp_path / "card.html"), "--limitations", "Only tiny patterns.")
    assert sorted(p.name for p in run.iterdir()) == before  # no ledger, no eval_test.json
    for ident in SECTIONS:
        assert f'id="{ident}"' in html, ident
    assert "http://" not in html and "https://" not in html and "<script" not in html
    sources = re.findall(r'src="([^"]*)"', html)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "loss_curves.png" in html and re.search(r"confusion_matrix(_val)?\.png", html)
    assert "objective FAIL" in html and "Not evaluated on the test split yet" in html
    assert "Not stated yet" in html  # the intended-use placeholder
    assert "Only tiny patterns." in html and "No test evaluation yet" in html
    assert "Wilson" in html and "bootstrap" in html


def test_test_metrics_with_intervals_after_a_test_evaluation(run):
    from mlcycle.evaluators.run_split import evaluate

    result = evaluate(run, "test")
    ledger = (run / "test_ledger.jsonl").read_text()
    html = card(run, "--intended-use", "Sorting stripes from blobs.")
    assert (run / "model_card.html").is_file()
    assert (run / "test_ledger.jsonl").read_text() == ledger  # the card adds no reading
    row = re.search(r"<tr><td>test</td>.*?</tr>", html).group(0)
    acc, f1 = result["metrics"]["acc"], result["metrics"]["f1"]
    assert f"{acc:.4f} <span class='muted'>[" in row and f"{f1:.4f} <span class='muted'>[" in row
    assert "confusion_matrix_test.png" in html and "Sorting stripes from blobs." in html
    assert "test: macro F1: 95% percentile bootstrap" in html
    assert "No test evaluation yet" not in html


def test_bad_run_fails_in_one_line(tmp_path, capsys):
    from mlcycle.commands.report import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--run", str(tmp_path / "missing")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and "does not exist" in err


def test_intervals():
    low, high = wilson(45, 50)
    assert low < 0.9 < high and 0.78 < low < 0.79 and 0.95 < high < 0.96
    assert wilson(0, 10)[0] == 0.0 and wilson(10, 10)[1] == pytest.approx(1.0)
    rng = np.random.default_rng(1)
    target = rng.integers(0, 4, 300)
    pred = np.where(rng.random(300) < 0.7, target, rng.integers(0, 4, 300))
    from torchmetrics.functional.classification import multiclass_f1_score

    expected = multiclass_f1_score(torch.tensor(pred), torch.tensor(target), 4, average="macro")
    assert macro_f1(pred, target, 4)[0] == pytest.approx(float(expected), abs=1e-6)
    low, high = bootstrap_macro_f1(pred, target, 4, resamples=300)
    assert low < float(expected) < high and high - low < 0.2


def test_the_card_asks_the_tasks_part():
    from mlcycle.card.parts import CardPart, card_part
    from mlcycle.images.card import ClassificationCard, DetectionCard, SegmentationCard
    from mlcycle.tables.card import TableCard

    found = [type(card_part(n)) for n in ("classification", "segmentation", "detection", "tabular")]
    assert found == [ClassificationCard, SegmentationCard, DetectionCard, TableCard]
    default = card_part("a-task-with-no-part")  # a plugin's task: the base part answers
    assert type(default) is CardPart and default.metric_keys == default.error_figures == ()
    row = {"file": "m.onnx", "size_bytes": 10, "size_vs_fp32_onnx": 0.3, "agree": 7, "diff": 0.5}
    assert default.check_values(row) == [("diff", 0.5)]
    assert ClassificationCard().check_values({"top1_agreement": 1.0, "diff": 0.5}) == [
        ("top1_agreement", 1.0)
    ]


def test_a_task_without_a_part_gets_a_plain_card(run, monkeypatch):
    from mlcycle.card import facts
    from mlcycle.card.parts import CardPart

    monkeypatch.setattr(facts, "card_part", lambda name: CardPart())
    html = card(run, "--no-latency")
    for ident in SECTIONS:
        assert f'id="{ident}"' in html, ident
    assert "val: no intervals for classification metrics" in html and "Wilson" not in html
    assert "<th>error</th>" in html  # every recorded number, not the classification columns
    assert "No figures in the run." in html and "loss_curves.png" in html


def test_the_bootstrap_of_one_image_is_its_value():
    assert bootstrap_macro_f1(np.array([1]), np.array([1]), 2) == (1.0, 1.0)
