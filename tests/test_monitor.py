"""reference.json at export and scripts/monitor.py on a SQLite prediction store filled as the
server fills it (mlcycle.edge's preprocessing, ONNX Runtime, image_stats on the decoded upload)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from export_helpers import ROOT, export_run, train_run

from mlcycle.commands.monitor import main
from mlcycle.edge.decode import load_image, preprocess
from mlcycle.edge.form import softmax
from mlcycle.edge.model import load_model
from mlcycle.monitor import drift
from mlcycle.monitor.binning import bin_counts, bin_index, quantile_edges, summarize
from mlcycle.monitor.checks import window_checks
from mlcycle.monitor.judge import same_version
from mlcycle.monitor.thresholds import load_thresholds
from mlcycle.monitor.windows import parse_window, split_windows
from mlcycle.serve.stats import STATS, image_stats
from mlcycle.serve.store import PredictionStore, prediction_row

START = datetime(2024, 5, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A small classification run (450 colour-coded images, ~112 for val), exported to ONNX."""
    base = tmp_path_factory.mktemp("monitor_run")
    path = train_run(base, 150, "--data.batch_size=32", "--trainer.max_epochs=2")
    export_run(path, "--format", "onnx")
    return path


def val_files(run: Path) -> list[tuple[Path, str]]:
    with (run / "splits.csv").open(newline="") as fh:
        return [(Path(r["path"]), r["label"]) for r in csv.DictReader(fh) if r["split"] == "val"]


def served_rows(run: Path, transform=None) -> tuple[list[dict], list[str]]:
    """Prediction rows of the val images as the server makes them, spread over 3 days; and the
    true labels."""
    model_path = run / "export" / "model.onnx"
    meta = json.loads((run / "export" / "model.json").read_text())
    spec, names = meta["input"], meta["class_names"]
    files = val_files(run)
    images = [load_image(path, spec["channels"]) for path, _ in files]
    if transform is not None:
        images = [transform(img) for img in images]
    version = reference(run)["model_sha256"]
    probs = softmax(load_model(model_path)(np.stack([preprocess(i, spec) for i in images]))[0])
    rows = []
    for i, (image, p, (path, _)) in enumerate(zip(images, probs, files, strict=True)):
        best = int(p.argmax())
        rows.append(
            prediction_row(
                time=START + timedelta(days=i % 3, minutes=i),
                model_version=version,
                source="api",
                input_name=path.name,
                input_sha256=f"{i:064x}",
                width=image.shape[1],
                height=image.shape[0],
                mode="RGB",
                predicted=names[best],
                confidence=float(p[best]),
                top_k=[{"class": names[best], "probability": float(p[best])}],
                latency_ms=1.0,
                **image_stats(image),
            )
        )
    return rows, [label for _, label in files]


def fill_store(path: Path, rows: list[dict], labels: list[str] | None = None) -> str:
    url = f"sqlite:///{path}"
    store = PredictionStore(url)
    store.add_many(rows)
    store.flush()
    for row, label in zip(rows, labels or [], strict=False):
        assert store.add_feedback(row["id"], label)
    store.close()
    return url


def reference(run: Path) -> dict:
    return json.loads((run / "export" / "reference.json").read_text())


def monitor(run: Path, url: str, out: Path, *extra: str) -> tuple[int, dict, str]:
    """``monitor.py`` in-process: exit code, monitor.json, what it printed."""
    printed = io.StringIO()
    code = 0
    with contextlib.redirect_stdout(printed):
        try:
            main(["--db", url, "--run", str(run), "--out", str(out), *extra])
        except SystemExit as exc:
            code = exc.code
    found = out / "monitor.json"
    return code, json.loads(found.read_text()) if found.is_file() else {}, printed.getvalue()


def flagged(report: dict) -> set[tuple[str, str]]:
    return {
        (c["check"], c["subject"]) for w in report["windows"] for c in w["checks"] if c["flagged"]
    }


def brighter(image: np.ndarray) -> np.ndarray:
    return np.clip(image.astype(np.float64) * 0.5 + 100, 0, 255).astype(np.uint8)


# --- reference.json -----------------------------------------------------------------------------


def test_reference_is_written_beside_the_model_and_is_sane(run):
    meta = json.loads((run / "export" / "model.json").read_text())
    assert meta["reference"] == "reference.json"
    ref = reference(run)
    assert ref["kind"] == "classes" and ref["task"] == "classification"
    assert ref["model"] == "model.onnx"
    val = len(val_files(run))
    assert ref["splits"]["val"]["images"] == val and ref["splits"]["train"]["images"] > val
    for split in ("train", "val"):
        for name in STATS:
            found = ref["splits"][split]["statistics"][name]
            assert sum(found["counts"]) == found["count"] == ref["splits"][split]["images"]
            assert found["counts"][0] == found["counts"][-1] == 0  # out-of-range bins
            assert len(found["sample"]) == found["count"] and found["edges"] == sorted(
                found["edges"]
            )
    # statistics of the original 20x20 files, not the 16x16 training inputs
    assert ref["splits"]["val"]["statistics"]["pixels"]["edges"] == [400.0, 400.0]
    predictions = ref["predictions"]
    assert sum(predictions["classes"].values()) == predictions["images"] == val
    assert 0.8 <= predictions["accuracy"] <= 1 and 0 < predictions["macro_f1"] <= 1
    assert set(predictions["per_class"]) == set(meta["class_names"])
    assert sum(predictions["confidence"]["histogram"]["counts"]) == val


def test_no_reference_skips_it(run, tmp_path):
    out = tmp_path / "export"
    export_run(run, "--format", "onnx", "--out", str(out), "--no-reference")
    assert not (out / "reference.json").exists()
    assert "reference" not in json.loads((out / "model.json").read_text())
    url = fill_store(tmp_path / "p.db", served_rows(run)[0][:5])
    with pytest.raises(SystemExit) as exc, contextlib.redirect_stdout(io.StringIO()):
        main(["--db", url, "--model", str(out / "model.onnx"), "--out", str(tmp_path / "m")])
    assert exc.value.code == 2


# --- the monitor on a store -----------------------------------------------------------------------


def test_validation_images_as_they_are_are_not_drift(run, tmp_path, capsys):
    rows, labels = served_rows(run)
    url = fill_store(tmp_path / "p.db", rows, labels)
    code, report, printed = monitor(run, url, tmp_path / "days", "--window", "1d")
    assert code == 0, (printed, capsys.readouterr().err, flagged(report))
    assert len(report["windows"]) == 3 and all(w["judged"] for w in report["windows"])
    assert printed.count(" ok (") == 3 and "no threshold crossed in 3" in printed
    checks = {c["check"] for c in report["windows"][0]["checks"]}
    assert checks >= {"input_psi", "input_ks", "class_chi2", "class_psi", "accuracy", "macro_f1"}
    html = (tmp_path / "days" / "monitor.html").read_text()
    assert html.count("data:image/png;base64,") == 4 and "http" not in html.split("<body>")[1]
    # one window: every row, so KS is judged too (>= 50 rows)
    code, report, _ = monitor(run, url, tmp_path / "all")
    assert code == 0 and len(report["windows"]) == 1, flagged(report)
    assert all(c["judged"] for c in report["windows"][0]["checks"] if c["check"] == "input_ks")
    # --since / --until select the rows of one day
    code, report, _ = monitor(
        run, url, tmp_path / "day", "--since", "2024-05-02", "--until", "2024-05-03T00:00Z"
    )
    assert code == 0 and [w["rows"] for w in report["windows"]] == [
        sum(1 for i in range(len(rows)) if i % 3 == 1)
    ]


def test_brightness_and_contrast_shift_is_input_drift(run, tmp_path, capsys):
    url = fill_store(tmp_path / "p.db", served_rows(run, brighter)[0])
    code, report, printed = monitor(run, url, tmp_path / "m", "--window", "1d")
    assert code == 1
    assert "3 of 3 windows crossed a threshold" in capsys.readouterr().err
    assert {("input_psi", "brightness"), ("input_psi", "contrast")} <= flagged(report)
    assert printed.count("DRIFT") == 3


def test_wrong_feedback_is_a_performance_drop(run, tmp_path):
    rows, labels = served_rows(run)
    names = reference(run)["class_names"]
    # every second answer was wrong: accuracy about 0.5
    wrong = [
        names[(names.index(row["predicted"]) + 1) % len(names)] if i % 2 else label
        for i, (row, label) in enumerate(zip(rows, labels, strict=True))
    ]
    url = fill_store(tmp_path / "p.db", rows, wrong)
    code, report, _ = monitor(run, url, tmp_path / "m", "--window", "1d")
    assert code == 1
    assert flagged(report) == {("accuracy", "feedback"), ("macro_f1", "feedback")}
    accuracy = [c for c in report["windows"][0]["checks"] if c["check"] == "accuracy"][0]
    assert accuracy["high"] < accuracy["reference"] and accuracy["rows"] >= 30


def test_bad_input_exits_2(run, tmp_path, capsys):
    code, _, _ = monitor(run, f"sqlite:///{tmp_path / 'none.db'}", tmp_path / "m")
    assert code == 2 and "no SQLite database" in capsys.readouterr().err
    empty = fill_store(tmp_path / "empty.db", [])
    code, _, _ = monitor(run, empty, tmp_path / "m")
    assert code == 2 and "is empty" in capsys.readouterr().err
    url = fill_store(tmp_path / "p.db", served_rows(run)[0][:40])
    code, _, _ = monitor(run, url, tmp_path / "m", "--model-version", "0123456789abcdef")
    assert code == 2 and "--model-version all" in capsys.readouterr().err
    (tmp_path / "t.yaml").write_text("psi: 0.3\nmystery: 1\n")
    code, _, _ = monitor(run, url, tmp_path / "m", "--thresholds", str(tmp_path / "t.yaml"))
    assert code == 2 and "unknown threshold 'mystery'" in capsys.readouterr().err
    code, _, _ = monitor(run, url, tmp_path / "m", "--window", "3 fortnights")
    assert code == 2


def test_a_run_never_exported_is_told_to_export_first(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--db", f"sqlite:///{tmp_path / 'p.db'}", "--run", str(tmp_path)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert f"export it first: python scripts/export.py --run {tmp_path}" in err


# --- the pure parts ---------------------------------------------------------------------------------


def test_bins_put_out_of_range_values_in_their_own_bins():
    edges = quantile_edges(np.arange(100.0))
    assert len(edges) == 11 and edges[0] == 0 and edges[-1] == 99
    assert bin_index(edges, np.array([-1.0, 0.0, 99.0, 100.0])).tolist() == [0, 1, 10, 11]
    assert bin_counts(edges, np.arange(100.0))[1:-1] == [10] * 10
    constant = quantile_edges(np.full(5, 400.0))
    assert bin_counts(constant, np.array([300.0, 400.0, 400.0, 500.0])) == [1, 2, 1]


def test_drift_statistics():
    assert drift.psi([10, 20, 30], [1, 2, 3]) == pytest.approx(0)
    assert drift.psi([50, 50, 0], [0, 50, 50]) > 1
    ref = [0] + [100] * 10 + [0]
    assert drift.psi_noise(ref, 35) > 1 and drift.psi_noise(ref, 5000) < 0.05
    low, high = drift.wilson(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-3) and high == pytest.approx(0.9433, abs=1e-3)
    same = drift.class_chi2({"a": 50, "b": 50, "c": 1}, {"a": 500, "b": 500, "c": 10})
    assert same["p"] > 0.5 and same["cells"] == 2  # c expected ~1: merged
    moved = drift.class_chi2({"a": 90, "b": 10}, {"a": 500, "b": 500})
    assert moved["p"] < 1e-6 and moved["w"] > 0.5
    perf = drift.performance(["a", "b"] * 50, ["a", "b"] * 25 + ["b", "a"] * 25)
    assert perf["accuracy"] == 0.5 and perf["accuracy_low"] < 0.5 < perf["accuracy_high"]
    assert perf["f1_low"] <= perf["macro_f1"] <= perf["f1_high"]


def test_segmentation_gets_input_checks_only():
    values = np.random.default_rng(0).normal(100, 10, 200)
    statistics = {name: summarize(values) for name in STATS}
    reference = {
        "kind": "mask",
        "splits": {"train": {"statistics": statistics}},
        "predictions": {"images": 50, "foreground_share": summarize(values / 200)},
    }
    rows = [{name: float(v) for name in STATS} for v in values[:40] + 50]
    checks = window_checks(rows, reference, load_thresholds(None))
    assert {c["check"] for c in checks} == {"input_psi", "input_ks"}
    assert all(c["flagged"] for c in checks if c["check"] == "input_psi")


def test_windows_are_aligned_to_utc_days():
    rows = [{"time": START + timedelta(hours=h)} for h in (1, 2, 30, 70)]
    windows = split_windows(rows, parse_window("1d"))
    assert [len(w.rows) for w in windows] == [2, 1, 1] and windows[0].start == START
    assert len(split_windows(rows, None)[0].rows) == 4
    assert same_version("ab" * 32, "abababab") and not same_version("ab" * 32, "abab")


def test_the_monitor_imports_no_torch():
    code = "import sys, mlcycle.commands.monitor; print(sorted({'torch', 'lightning'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr


# --- end to end: the real server fills the store over HTTP ---------------------------------------


def serve_and_send(run: Path, store_dir: Path, transform=None, wrong_feedback: bool = False):
    """Start the server, post the val images (transformed), optionally send feedback through
    /v1/feedback naming the wrong class for every second image; stop it (the store drains)."""
    from serve_helpers import png, start

    names = reference(run)["class_names"]
    files = val_files(run)
    running, _, _ = start(run / "export" / "model.onnx", store_dir)
    with running:
        client = running.client()
        answers = []
        for first in range(0, len(files), 16):
            chunk = []
            for path, _ in files[first : first + 16]:
                image = load_image(path, 3)
                chunk.append((path.name, png(transform(image) if transform else image)))
            response = client.predict_files(chunk)
            assert response.status == 200
            answers += response.json()["results"]
        if wrong_feedback:
            for i, (answer, (_, label)) in enumerate(zip(answers, files, strict=True)):
                given = names[(names.index(answer["class"]) + 1) % len(names)] if i % 2 else label
                body = {"prediction_id": answer["prediction_id"], "label": given}
                assert client.post_json("/v1/feedback", body).status == 200
    return f"sqlite:///{store_dir / 'predictions.db'}"


def test_the_served_store_shows_no_drift_then_input_drift_then_a_performance_drop(run, tmp_path):
    url = serve_and_send(run, tmp_path / "plain")
    code, report, _ = monitor(run, url, tmp_path / "m1")
    assert code == 0, flagged(report)
    assert report["windows"][0]["rows"] == len(val_files(run))

    url = serve_and_send(run, tmp_path / "shifted", transform=brighter)
    code, report, _ = monitor(run, url, tmp_path / "m2")
    assert code == 1 and {("input_psi", "brightness"), ("input_psi", "contrast")} <= flagged(report)

    url = serve_and_send(run, tmp_path / "feedback", wrong_feedback=True)
    code, report, _ = monitor(run, url, tmp_path / "m3")
    assert code == 1 and ("accuracy", "feedback") in flagged(report)
    assert not {c for c, _ in flagged(report)} & {"input_psi", "input_ks"}
