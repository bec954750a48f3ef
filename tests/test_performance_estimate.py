"""Performance without labels (monitor/estimate.py, CBPE) and performance from feedback for a
model that predicts numbers (monitor/feedback_values.py).

The estimate's error is measured on shifted data with known labels: a scikit-learn
classifier's probabilities on val give the reliability map (as export writes it), then
windows of harder items and of other class shares (covariate shift: chosen by the inputs,
so P(label | input) holds) are estimated without their labels and compared with the metric
measured on their labels. The figures are printed (``pytest -s``)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.naive_bayes import GaussianNB

from mlcycle.monitor.binning import summarize
from mlcycle.monitor.drift import class_counts, performance
from mlcycle.monitor.estimate import estimate, estimate_checks, val_reliability
from mlcycle.monitor.judge import monitor
from mlcycle.monitor.report import write_outputs
from mlcycle.monitor.thresholds import defaults
from mlcycle.serve.store import PredictionStore, prediction_row

NAMES = ["a", "b", "c", "d"]
START = datetime(2024, 5, 1, tzinfo=timezone.utc)
TOLERANCE = 0.03  # |estimated - measured| allowed on a window of ~1,000 rows or more


@pytest.fixture(scope="module")
def classifier() -> dict:
    """Gaussian naive Bayes (overconfident: its probabilities need the val map) on 4 classes:
    val probabilities and labels, and a pool of test rows for the shifted windows."""
    x, y = make_classification(
        n_samples=12000, n_features=8, n_informative=5, n_classes=4, n_clusters_per_class=1,
        class_sep=1.2, random_state=0,
    )  # fmt: skip
    model = GaussianNB().fit(x[:3000], y[:3000])
    val, pool = model.predict_proba(x[3000:5000]), model.predict_proba(x[5000:])
    return {"val": val, "val_y": y[3000:5000], "pool": pool, "pool_y": y[5000:]}


def rows_of(probs: np.ndarray, top: int = 3) -> list[dict]:
    """Store rows as the server writes them: the class, its confidence and the top 3."""
    rows = []
    for p in probs:
        order = np.argsort(-p)[:top]
        rows.append({
            "predicted": NAMES[order[0]],
            "confidence": round(float(p[order[0]]), 6),
            "top_k": [{"class": NAMES[i], "probability": round(float(p[i]), 6)} for i in order],
        })  # fmt: skip
    return rows


def val_summary(classifier: dict) -> dict:
    """The reference's val predictions, as export writes them."""
    val, y = classifier["val"], classifier["val_y"]
    predicted = [NAMES[i] for i in val.argmax(1)]
    truth = [NAMES[i] for i in y]
    measured = performance(truth, predicted)
    conf = val.max(1)
    return {
        "classes": class_counts(predicted, NAMES),
        "confidence": summarize(conf),
        "accuracy": round(measured["accuracy"], 6),
        "macro_f1": round(measured["macro_f1"], 6),
        "reliability": val_reliability(list(conf), truth, predicted),
    }


def shifted(classifier: dict, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Test rows chosen by their inputs: ``same`` (as they come), ``harder`` (kept more often
    the less sure the model is), ``prior`` (rows the model calls ``a`` or ``b`` mostly
    dropped: other class shares)."""
    probs, y = classifier["pool"], classifier["pool_y"]
    rng = np.random.default_rng(1)
    conf = probs.max(1)
    if kind == "same":
        keep = np.ones(len(y), dtype=bool)
    elif kind == "harder":
        keep = rng.random(len(y)) < np.clip(1.1 - conf, 0, 1) ** 2 * 2
    else:
        keep = ~np.isin(probs.argmax(1), [0, 1]) | (rng.random(len(y)) < 0.1)
    return probs[keep], y[keep]


@pytest.mark.parametrize("kind", ["same", "harder", "prior"])
def test_the_estimate_follows_the_measured_metric_under_shift(classifier, kind):
    reference = val_summary(classifier)
    probs, y = shifted(classifier, kind)
    measured = performance([NAMES[i] for i in y], [NAMES[i] for i in probs.argmax(1)])
    found = estimate(rows_of(probs), NAMES, reference["reliability"])
    raw = estimate(rows_of(probs), NAMES, None)
    for name in ("accuracy", "macro_f1"):
        error = abs(found[name] - measured[name])
        print(
            f"{kind:>6} {name:>8}: {len(y)} rows, measured {measured[name]:.3f}, estimated "
            f"{found[name]:.3f} [{found[name + '_low']:.3f}, {found[name + '_high']:.3f}] "
            f"(error {error:.3f}; raw confidences {raw[name]:.3f}), reference {reference[name]:.3f}"
        )
        assert error < TOLERANCE
        if name == "accuracy":  # F1's interval leaves out how well the other classes are
            # calibrated (only the top class is): with other class shares it is too narrow
            assert found[name + "_low"] - 0.01 <= measured[name] <= found[name + "_high"] + 0.01
        if kind != "same":  # the drop is caught: far closer than val's value
            assert abs(reference[name] - measured[name]) > 0.05
            assert error < abs(reference[name] - measured[name]) / 3


def test_the_model_own_calibration_is_used_as_it_is(classifier):
    reference = val_summary(classifier)
    probs, _ = shifted(classifier, "harder")
    rows = rows_of(probs)
    mapped = estimate_checks(rows, {"predictions": reference}, defaults())
    own = estimate_checks(
        rows, {"predictions": reference, "calibration": {"temperature": 1.5}}, defaults()
    )
    assert [c["calibration"] for c in mapped] == ["val reliability"] * 2
    assert [c["calibration"] for c in own] == ["the model's own"] * 2
    mean_confidence = float(np.mean([r["confidence"] for r in rows]))
    assert own[0]["value"] == pytest.approx(mean_confidence, abs=1e-6)
    assert mapped[0]["value"] != pytest.approx(mean_confidence, abs=0.005)


def test_the_objective_minimum_is_the_alert(classifier):
    reference = val_summary(classifier)
    probs, _ = shifted(classifier, "same")
    rows = rows_of(probs)
    loose = {"metric": "val/f1", "min": 0.5, "mode": "max"}
    strict = {"metric": "val/f1", "min": 0.99, "mode": "max"}
    by_name = {
        name: {c["check"]: c for c in estimate_checks(rows, found, defaults())}
        for name, found in (
            ("loose", {"predictions": reference, "objective": loose}),
            ("strict", {"predictions": reference, "objective": strict}),
            ("none", {"predictions": reference}),
        )
    }
    assert not by_name["loose"]["macro_f1"]["flagged"]
    assert by_name["loose"]["macro_f1"]["limit_from"] == "objective"
    assert by_name["strict"]["macro_f1"]["flagged"] and by_name["strict"]["macro_f1"]["judged"]
    assert not by_name["strict"]["accuracy"]["flagged"]  # the objective names F1 only
    assert by_name["none"]["accuracy"]["limit_from"] == "reference"
    assert by_name["none"]["accuracy"]["threshold"] == pytest.approx(reference["accuracy"] - 0.05)
    probs, _ = shifted(classifier, "harder")  # the drop, without labels: below val less 0.05
    dropped = estimate_checks(rows_of(probs), {"predictions": reference}, defaults())
    assert all(c["flagged"] for c in dropped)


def fake_export(folder: Path, predictions: dict, objective: dict | None = None) -> Path:
    """model.onnx (bytes: the monitor only hashes it), model.json and a reference.json with
    no input statistics, so the monitor runs without a trained model."""
    folder.mkdir(parents=True)
    model = folder / "model.onnx"
    model.write_bytes(b"not a graph: the monitor hashes the file, nothing runs it")
    meta = {"reference": "reference.json", "objective": objective, "output": {"kind": "table"}}
    (folder / "model.json").write_text(json.dumps(meta))
    splits = {split: {"images": 0, "statistics": {}} for split in ("train", "val")}
    reference = {"format_version": 1, "splits": splits, "predictions": predictions}
    (folder / "reference.json").write_text(json.dumps(reference))
    return model


def fill(path: Path, model: Path, windows: list[tuple[list[dict], list[str | None]]]) -> str:
    """One window a day: the rows and their feedback (None: none)."""
    from mlcycle.monitor.reference import model_version

    url = f"sqlite:///{path}"
    store = PredictionStore(url)
    version, ids = model_version(model), []
    for day, (rows, labels) in enumerate(windows):
        for i, (row, label) in enumerate(zip(rows, labels, strict=True)):
            found = prediction_row(
                time=START + timedelta(days=day, seconds=i), model_version=version,
                source="api", input_sha256=f"{day}-{i}", **row,
            )  # fmt: skip
            store.add(found)
            ids.append((found["id"], label))
    store.flush()
    for prediction_id, label in ids:
        if label is not None:
            assert store.add_feedback(prediction_id, label)
    store.close()
    return url


def test_the_monitor_shows_the_estimate_beside_the_feedback(classifier, tmp_path, capsys):
    from mlcycle.commands.monitor import main

    reference = val_summary(classifier)
    model = fake_export(tmp_path / "export", reference, {"metric": "val/f1", "min": 0.7})
    same, same_y = shifted(classifier, "same")
    harder, _ = shifted(classifier, "harder")
    labelled = [NAMES[i] for i in same_y[:300]]
    url = fill(
        tmp_path / "p.db", model,
        [(rows_of(same[:300]), labelled), (rows_of(harder[:300]), [None] * 300)],
    )  # fmt: skip
    report = monitor(url, model, window="1d")
    first, second = report["windows"]
    checks = {(c["check"], c["subject"]): c for c in first["checks"]}
    assert checks[("accuracy", "estimate")]["value"] == pytest.approx(
        checks[("accuracy", "feedback")]["value"], abs=0.06
    )
    assert not first["flagged"]
    late = {(c["check"], c["subject"]): c for c in second["checks"]}
    assert late[("macro_f1", "feedback")]["value"] is None  # no labels yet...
    assert late[("macro_f1", "estimate")]["flagged"]  # ...but the estimate is below 0.7
    assert late[("macro_f1", "estimate")]["limit_from"] == "objective"
    page = write_outputs(report, tmp_path / "m")[1].read_text()
    assert "estimated" in page and "measured" in page
    with pytest.raises(SystemExit) as exit_code:
        main(["--db", url, "--model", str(model), "--window", "1d", "--out", str(tmp_path / "o")])
    assert exit_code.value.code == 1
    printed = capsys.readouterr()
    assert "accuracy: measured" in printed.out and "estimated" in printed.out
    assert "macro_f1" in printed.err


def test_regression_feedback_gives_rmse_mae_and_r2(tmp_path):
    """A regression table exported for real: feedback as it was (window 1) is no drop; the
    same rows when the truth moved away from the predictions (window 2) are."""
    import contextlib
    import io
    import tempfile

    import onnxruntime as ort
    import pandas as pd
    from test_monitor_tables import FOREST
    from test_tables_models import learnable_table, train

    from mlcycle.edge.rows import read_rows, table_inputs
    from mlcycle.export.run_export import ExportOptions, export_run

    run = train(tmp_path / "forest", learnable_table(tmp_path / "rows.csv"), "value", *FOREST)
    with contextlib.redirect_stdout(io.StringIO()):
        export_run(ExportOptions(run=str(run), format=["onnx"]))
    model = run / "export" / "model.onnx"
    meta = json.loads((run / "export" / "model.json").read_text())
    fresh = pd.read_csv(learnable_table(tmp_path / "fresh.csv", rows=200, seed=1))
    with tempfile.TemporaryDirectory() as tmp:
        fresh.to_csv(Path(tmp) / "rows.csv", index=False)
        feeds, _, _ = table_inputs(*read_rows(Path(tmp) / "rows.csv"), meta["input"])
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    predicted = np.asarray(session.run(None, feeds)[0]).reshape(-1)
    rows = [{"predicted": repr(round(float(v), 6))} for v in predicted]
    truth = fresh["value"].to_numpy()
    moved = truth + np.random.default_rng(0).normal(0, 4.0, len(truth))
    url = fill(
        tmp_path / "p.db", model,
        [(rows, [str(float(v)) for v in truth]), (rows, [str(float(v)) for v in moved])],
    )  # fmt: skip
    report = monitor(url, model, window="1d")
    same, worse = ({c["check"]: c for c in w["checks"] if c["subject"] == "feedback"}
                   for w in report["windows"])  # fmt: skip
    print({n: (c["value"], c["low"], c["high"], c["reference"]) for n, c in same.items()})
    print({n: (c["value"], c["low"], c["high"], c["flagged"]) for n, c in worse.items()})
    assert set(same) == {"rmse", "mae", "r2"} == set(worse)
    assert not any(c["flagged"] for c in same.values()), same
    rmse = float(np.sqrt(((truth - predicted) ** 2).mean()))
    assert same["rmse"]["value"] == pytest.approx(rmse, abs=1e-4) and same["rmse"]["rows"] == 200
    assert same["rmse"]["low"] <= same["rmse"]["value"] <= same["rmse"]["high"]
    assert worse["rmse"]["flagged"] and worse["mae"]["flagged"] and worse["r2"]["flagged"]
    assert worse["rmse"]["low"] > worse["rmse"]["reference"]
    assert not any(c["subject"] == "estimate" for w in report["windows"] for c in w["checks"])
