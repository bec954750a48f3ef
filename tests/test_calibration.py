"""Calibration and decision thresholds: ECE and the reliability diagram in evaluate.py,
temperature scaling inside the exported graph (export --calibrate), and a binary decision
threshold chosen on val, recorded in model.json and applied by predict.py."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torchmetrics.functional.classification import multiclass_calibration_error

from mlcycle.core.errors import UserError
from mlcycle.edge.forms import form_for
from mlcycle.edge.predict_rows import row_answers
from mlcycle.evaluators.calibration import (
    expected_calibration_error,
    fit_temperature,
    softmax,
    temperature_record,
)
from mlcycle.evaluators.thresholds import Rule, choose_threshold


def overconfident(n: int = 2000, k: int = 4, scale: float = 4.0, seed: int = 0):
    """Logits whose softmax is calibrated, multiplied by ``scale`` (an overconfident model),
    and targets drawn from the calibrated probabilities."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.2, (n, k))
    probs = softmax(logits)
    target = np.array([rng.choice(k, p=p) for p in probs])
    return logits * scale, target


def test_ece_of_a_known_miscalibrated_set():
    # 100 samples, all at confidence 0.9, 60 right: every sample's bin is off by 0.3
    probs = np.tile([0.9, 0.1], (100, 1))
    target = np.r_[np.zeros(60, int), np.ones(40, int)]
    assert expected_calibration_error(probs, target) == pytest.approx(0.3)
    # and torchmetrics' definition (15 bins, L1) on a random set gives our number
    logits, target = overconfident(500, 5, 2.0, seed=3)
    probs = softmax(logits)
    want = multiclass_calibration_error(
        torch.from_numpy(probs).float(), torch.from_numpy(target), 5, n_bins=15, norm="l1"
    )
    assert expected_calibration_error(probs, target) == pytest.approx(float(want), abs=1e-5)


def test_temperature_above_one_for_an_overconfident_model_and_ece_drops():
    logits, target = overconfident()
    assert fit_temperature(logits, target) == pytest.approx(4.0, rel=0.15)
    record = temperature_record(logits, target)
    assert record["temperature"] > 1
    assert record["ece_after"] < record["ece_before"] / 2
    assert record["nll_after"] < record["nll_before"]
    # an underconfident one gets T < 1
    assert fit_temperature(logits / 16, target) < 1
    assert not record["at_bound"] and record["val_mistakes"] > 0
    # a val split without a mistake pushes T to its lower bound, and says so
    right = logits.argmax(axis=1)
    assert temperature_record(logits, right)["at_bound"]


def test_threshold_from_a_cost_matrix():
    scores = np.array([0.05, 0.2, 0.35, 0.4, 0.6, 0.7, 0.9, 0.95])
    positive = np.array([0, 0, 1, 0, 1, 0, 1, 1], bool)
    dear_fp = choose_threshold(scores, positive, Rule(cost=(5.0, 1.0)))
    dear_fn = choose_threshold(scores, positive, Rule(cost=(1.0, 10.0)))
    # a false positive costing 5 pushes the threshold up past every negative; a false
    # negative costing 10 pulls it down until every positive is caught
    assert dear_fp["threshold"] == pytest.approx((0.7 + 0.9) / 2)
    assert dear_fp["val"]["false_positives"] == 0 and dear_fp["val"]["precision"] == 1
    assert dear_fn["val"]["false_negatives"] == 0 and dear_fn["val"]["recall"] == 1
    assert dear_fn["threshold"] == pytest.approx((0.2 + 0.35) / 2)  # between two scores
    # brute force: no threshold has a lower cost
    costs = [((scores >= t) & ~positive).sum() + 10 * ((scores < t) & positive).sum()
             for t in np.linspace(0, 1, 1001)]  # fmt: skip
    assert dear_fn["val"]["cost"] == min(costs)


def test_threshold_from_a_target_precision_and_recall():
    rng = np.random.default_rng(1)
    positive = rng.random(400) < 0.4
    scores = np.clip(rng.normal(np.where(positive, 0.65, 0.35), 0.15), 0, 1)
    found = choose_threshold(scores, positive, Rule(precision=0.9))
    picked = scores >= found["threshold"]
    precision = (picked & positive).sum() / picked.sum()
    assert precision >= 0.9 and found["val"]["precision"] == pytest.approx(precision, abs=1e-6)
    # the lowest threshold reaching it: one step lower misses the target
    lower = np.unique(scores)[np.unique(scores) < found["threshold"]].max()
    below = scores >= lower
    assert (below & positive).sum() / below.sum() < 0.9
    recall = choose_threshold(scores, positive, Rule(recall=0.95))
    assert recall["val"]["recall"] >= 0.95
    # the top score is a negative: the best precision is that of taking every row, 4/5
    with pytest.raises(UserError, match="best reachable precision is 0.8000"):
        choose_threshold(
            np.array([0.1, 0.5, 0.6, 0.7, 0.9]),
            np.array([1, 1, 1, 1, 0], bool),
            Rule(precision=0.99),
        )


def test_the_decision_threshold_is_applied_by_every_form():
    meta = {
        "class_names": ["no", "yes"],
        "output": {"kind": "classes", "decision": {"positive_index": 1, "threshold": 0.2}},
    }
    logits = np.log(np.array([[0.75, 0.25], [0.85, 0.15]]))
    answers = form_for(meta).answers([[row] for row in logits], [(1, 1)] * 2)
    assert [a["class"] for a in answers] == ["yes", "no"]  # argmax says "no" twice
    assert answers[0]["confidence"] == pytest.approx(0.25)
    rows = list(row_answers([np.exp(logits)], {**meta, "output": {**meta["output"], "kind": "table"}}))  # fmt: skip
    assert [r["class"] for r in rows] == ["yes", "no"]
    plain = form_for({"class_names": ["no", "yes"], "output": {"kind": "classes"}})
    assert plain.answers([[logits[0]]], [(1, 1)])[0]["class"] == "no"


def test_evaluate_reports_ece_and_a_reliability_diagram(trained_run):
    from mlcycle.commands.evaluate import main

    with contextlib.redirect_stdout(io.StringIO()) as out:
        result = main(["--run", str(trained_run), "--split", "val"])
    saved = json.loads((trained_run / "eval_val.json").read_text())
    assert saved["metrics"]["ece"] == result["calibration"]["ece"]
    assert 0 <= saved["metrics"]["ece"] <= 1 and saved["calibration"]["bins"] == 15
    assert sum(saved["calibration"]["count"]) == saved["images"]
    assert (trained_run / "reliability_val.png").stat().st_size > 1000
    assert "calibration: ECE" in out.getvalue()


def test_export_calibrate_puts_the_temperature_in_the_graph(tmp_path):
    from export_helpers import export_run, train_run

    run = train_run(tmp_path, 12, "--trainer.max_epochs=4")
    result, printed = export_run(run, "--calibrate", "--format", "onnx", "--no_reference")
    meta = json.loads((run / "export" / "model.json").read_text())
    calibration = meta["output"]["calibration"]
    temperature = calibration["temperature"]
    assert temperature > 0 and temperature != 1 and calibration["in_graph"]
    assert calibration["ece_after"] <= calibration["ece_before"] + 1e-9
    assert "calibration: temperature" in printed and result["report"]["passed"]
    # the graph's logits are the eager model's divided by T
    from mlcycle.run.loader import Run

    task = Run(run).load_model("best").float().cpu().eval()
    data = Run(run).load_data(num_workers=0)
    x = torch.stack([data.dataset("val")[i][0] for i in range(4)]).float()
    with torch.no_grad():
        eager = task.model(x).numpy() / temperature
    session = ort.InferenceSession(str(run / "export" / "model.onnx"))
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    assert np.abs(got - eager).max() < 1e-4


def _binary_table_run(base: Path) -> Path:
    from mlcycle.commands.train import main

    args = [
        "--data.class_path=mlcycle.tables.TabularData",
        "--data.source=builtin",
        "--data.path=breast_cancer",
        "--data.target=target",
        "--model.class_path=mlcycle.tables.ClassicTabularTask",
        "--model.estimator=logistic_regression",
        "--trainer.accelerator=cpu",
        "--trainer.enable_progress_bar=false",
        f"--run_dir={base / 'run'}",
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        return Path(main(args))


def test_table_threshold_in_model_json_and_applied_by_predict(tmp_path, capsys):
    from export_helpers import export_run

    from mlcycle.commands.predict import main as predict

    run = _binary_table_run(tmp_path)
    result, printed = export_run(run, "--calibrate", "--threshold_cost", "1,20", "--no_reference")
    assert result["report"]["passed"], printed
    output = json.loads((run / "export" / "model.json").read_text())["output"]
    decision, names = output["decision"], result["model_json"]["class_names"]
    assert decision["positive_class"] == names[1] and 0 < decision["threshold"] < 0.5
    assert output["calibration"]["temperature"] > 0
    rows = tmp_path / "rows.csv"
    from mlcycle.run.loader import Run

    Run(run).load_data(num_workers=0).frame("val").to_csv(rows, index=False)
    capsys.readouterr()
    assert predict([str(run / "export" / "model.onnx"), "--csv", str(rows)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines
    for line in lines:
        p = line["probabilities"][names[1]]
        assert line["class"] == (names[1] if p >= decision["threshold"] else names[0])
