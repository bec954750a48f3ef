"""A binary decision threshold from a YAML (``mlcycle export --config export.yaml``), and
predict.py --threshold deciding at another threshold than model.json's."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import sys

import numpy as np
import pytest
import yaml
from test_calibration import _binary_table_run

from mlcycle.edge.decision import with_threshold
from mlcycle.edge.forms import form_for
from mlcycle.edge.predict_rows import row_answers

BINARY = {"class_names": ["no", "yes"], "output": {"kind": "classes"}}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A binary table model exported from a YAML: the threshold of least cost, on class 0."""
    from mlcycle.commands.export import main as export
    from mlcycle.run.loader import Run

    base = tmp_path_factory.mktemp("decision")
    run = _binary_table_run(base)
    data = Run(run).load_data(num_workers=0)
    names = ["benign", "malignant"]  # breast_cancer's classes, sorted
    config = base / "export.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "run": str(run),
                "threshold_cost": "20,1",
                "positive_class": names[0],
                "no_reference": True,
                "format": ["onnx"],
            }
        )
    )
    with contextlib.redirect_stdout(io.StringIO()):
        export(["--config", str(config)])
    assert json.loads((run / "export/model.json").read_text())["class_names"] == names
    rows = base / "rows.csv"
    data.frame("val").to_csv(rows, index=False)
    return run / "export", rows, names


def predict(model, *args: str, capsys) -> tuple[int, list[dict]]:
    """predict.py's exit code and JSON lines; its stderr stays in ``capsys``."""
    from mlcycle.commands.predict import main

    capsys.readouterr()
    code = main([str(model), *args])
    out, err = capsys.readouterr()
    print(err, file=sys.stderr)
    return code, [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_the_export_yaml_sets_the_decision_threshold(exported):
    folder, _, names = exported
    decision = json.loads((folder / "model.json").read_text())["output"]["decision"]
    assert decision["positive_class"] == names[0] and decision["positive_index"] == 0
    assert "cost" in decision["rule"] and "20" in decision["rule"]
    assert 0.5 < decision["threshold"] < 1  # a false positive costs 20 times a miss: stricter


def test_predict_threshold_overrides_model_json(exported, capsys):
    folder, rows, names = exported
    model = folder / "model.onnx"
    code, saved = predict(model, "--csv", str(rows), capsys=capsys)
    assert code == 0 and saved
    for threshold in (0.05, 0.95):
        code, lines = predict(model, "--csv", str(rows), "--threshold", str(threshold), capsys=capsys)  # fmt: skip
        assert code == 0 and len(lines) == len(saved)
        for line in lines:  # on model.json's positive class, at the given threshold
            p = line["probabilities"][names[0]]
            assert line["class"] == (names[0] if p >= threshold else names[1])
    low = predict(model, "--csv", str(rows), "--threshold", "0.05", capsys=capsys)[1]
    high = predict(model, "--csv", str(rows), "--threshold", "0.95", capsys=capsys)[1]
    count = [sum(line["class"] == names[0] for line in found) for found in (high, saved, low)]
    assert count[0] < count[1] < count[2]  # a lower threshold answers the positive class more


def test_predict_threshold_without_a_decision_is_on_the_second_class(exported, tmp_path, capsys):
    folder, rows, names = exported
    plain = tmp_path / "export"
    shutil.copytree(folder, plain)
    meta = json.loads((plain / "model.json").read_text())
    meta["output"].pop("decision")
    (plain / "model.json").write_text(json.dumps(meta))
    code, lines = predict(plain / "model.onnx", "--csv", str(rows), "--threshold", "0.9", capsys=capsys)  # fmt: skip
    assert code == 0 and lines
    for line in lines:
        assert line["class"] == (names[1] if line["probabilities"][names[1]] >= 0.9 else names[0])
    code, _ = predict(plain / "model.onnx", "--csv", str(rows), "--threshold", "1.5", capsys=capsys)  # fmt: skip
    assert code == 2 and "--threshold must be in [0, 1]" in capsys.readouterr().err


def test_with_threshold_decides_images_and_rows_and_refuses_more_classes():
    logits = np.log(np.array([[0.75, 0.25], [0.40, 0.60]]))
    meta = with_threshold(BINARY, 0.7)
    assert meta["output"]["decision"]["positive_class"] == "yes"
    assert BINARY["output"] == {"kind": "classes"}  # model.json as read stays as it was
    answers = form_for(meta).answers([[row] for row in logits], [(1, 1)] * 2)
    assert [a["class"] for a in answers] == ["no", "no"]  # argmax says "yes" for the second
    table = with_threshold({**BINARY, "output": {"kind": "table"}}, 0.2)
    assert [r["class"] for r in row_answers([np.exp(logits)], table)] == ["yes", "yes"]
    labels = {"class_names": ["a", "b", "c"], "output": {"kind": "labels"}}
    assert with_threshold(labels, 0.3) is labels  # a labels model takes --threshold itself
    assert with_threshold(BINARY, None) is BINARY
    three = {"class_names": ["a", "b", "c"], "output": {"kind": "classes"}}
    with pytest.raises(ValueError, match="decision threshold; this model has 3 classes"):
        with_threshold(three, 0.5)
    with pytest.raises(ValueError, match="this model predicts a number"):
        with_threshold({"output": {"kind": "table"}}, 0.5)
