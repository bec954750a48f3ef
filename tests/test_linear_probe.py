"""Linear probes in compare.py (classic models on a pretrained backbone's or an earlier run's
embeddings), offline, and the leaderboard's start column of every kind of candidate."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
import yaml
from conftest import run_train, write_folder

from mlcycle.core.errors import UserError
from mlcycle.selection.compare.spec import load_spec
from mlcycle.selection.compare.start import named_start

CLOSED = "http://127.0.0.1:9"  # nothing listens there: a download would fail at once
LOGREG = "sklearn.linear_model.LogisticRegression"


@pytest.fixture(scope="module")
def probe_comparison(tmp_path_factory):
    """A 2-fold comparison: scratch, init_from and three probes, on a fake torchvision cache."""
    from mlcycle.commands.compare import main

    base = tmp_path_factory.mktemp("probe")
    checkpoints = base / "torch_home" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    state = torchvision.models.get_model("mobilenet_v3_small", weights=None).state_dict()
    torch.save(state, checkpoints / "mobilenet_v3_small-047dcff4.pth")  # torch.hub's name
    torch.save(state, base / "local.pth")
    data = write_folder(base / "images", per_class=10)
    pre = run_train(data, base / "pre", "--trainer.max_epochs=1")
    candidates = [
        {"name": "scratch", "args": []},
        {"name": "warm", "args": [f"--model.init_from={pre}", "--model.freeze_epochs=1"]},
        {"name": "probe", "estimator": LOGREG, "features": "backbone:mobilenet_v3_small"},
        {
            "name": "probe_file",
            "estimator": LOGREG,
            "features": "backbone:mobilenet_v3_small",
            "weights": str(base / "local.pth"),
            "image_size": 24,
        },
        {"name": "probe_run", "estimator": LOGREG, "features": f"run:{pre}"},
    ]
    config = {
        "train": ["configs/image_folder.yaml"],
        "args": [f"--data.root={data}", "--model.arch=small_cnn", "--data.image_size=16"]
        + ["--data.batch_size=8", "--trainer.max_epochs=1", "--data.train_transforms=[]"],
        "folds": 2,
        "classic_size": 16,
        "candidates": candidates,
    }
    (base / "cmp.yaml").write_text(yaml.safe_dump(config))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TORCH_HOME", str(base / "torch_home"))
        for key in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
            patch.setenv(key, CLOSED)
        for key in ("NO_PROXY", "no_proxy"):
            patch.delenv(key, raising=False)
        main(["--config", str(base / "cmp.yaml"), "--out", str(base / "out")])
    rows = {r["candidate"]: r for r in csv.DictReader((base / "out" / "leaderboard.csv").open())}
    return {"out": base / "out", "rows": rows, "pre": pre, "base": base}


@pytest.mark.slow
def test_probe_rows_name_their_start_and_every_candidate_finished(probe_comparison):
    rows, pre = probe_comparison["rows"], probe_comparison["pre"]
    assert all(r["mean"] for r in rows.values()), rows
    assert rows["scratch"]["start"] == "scratch"
    assert rows["warm"]["start"] == f"init_from:{pre}"
    assert rows["probe"]["start"] == "backbone:mobilenet_v3_small (IMAGENET1K_V1)"
    assert rows["probe_file"]["start"].startswith("backbone:mobilenet_v3_small (file:")
    assert rows["probe_run"]["start"] == f"run:{pre}"
    assert rows["probe"]["family"] == "classic"
    out = probe_comparison["out"]
    assert (
        "| probe | candidate | classic | backbone:mobilenet_v3_small (IMAGENET1K_V1) |"
        in (out / "leaderboard.md").read_text()
    )
    assert "backbone:mobilenet_v3_small (IMAGENET1K_V1)" in (out / "leaderboard.html").read_text()
    # the backbone counts in the probe's size and its ms per image
    assert int(rows["probe"]["params"]) > 900_000 > int(rows["probe_run"]["params"])


@pytest.mark.slow
def test_embeddings_are_computed_once_per_comparison(probe_comparison):
    out = probe_comparison["out"]
    files = sorted((out / "features").glob("*.npz"))
    assert [f.name.split("-")[0] for f in files] == ["backbone", "backbone", "run"]
    pool = 30  # 3 classes x 10 images, less the sealed test split
    for file in files:
        cached = np.load(file)
        assert len(cached["paths"]) == len(cached["features"]) < pool
    mobile = np.load(files[0])["features"]
    assert mobile.shape[1] == 1024  # MobileNetV3-small's pooled features before its classifier
    # each fold read the same file: both fold records exist, the file was written once
    stamps = {f: f.stat().st_mtime_ns for f in files}
    records = [
        json.loads((out / "candidates" / "probe" / f"fold{k}" / "selection_fold.json").read_text())
        for k in (0, 1)
    ]
    assert [r["start"] for r in records] == ["backbone:mobilenet_v3_small (IMAGENET1K_V1)"] * 2
    assert {f: f.stat().st_mtime_ns for f in files} == stamps


def test_probe_keys_are_checked(tmp_path):
    bad = [
        ({"features": "backbone:"}, "'features' is 'pixels'"),
        ({"features": "pixels", "weights": "IMAGENET1K_V1"}, "'weights' goes with features"),
        ({"features": "backbone:resnet18", "image_size": 2}, "'image_size' is a side"),
    ]
    for extra, message in bad:
        entry = {"name": "p", "estimator": LOGREG, **extra}
        path = tmp_path / "c.yaml"
        path.write_text(
            yaml.safe_dump({"train": ["configs/quickstart.yaml"], "candidates": [entry]})
        )
        with pytest.raises(UserError, match=message):
            load_spec(path)


def test_start_words_of_a_run_config():
    tv = {"preprocessing": {"weights": "torchvision ResNet18_Weights.IMAGENET1K_V1"}}
    assert (
        named_start({"weights": None, "pretrained": True}, tv["preprocessing"]) == "IMAGENET1K_V1"
    )
    timm = {"weights": "timm resnet18.a1_in1k"}
    assert named_start({"weights": None, "pretrained": True}, timm) == "resnet18.a1_in1k"
    assert named_start({"weights": "/w/r.pth", "pretrained": False}, None) == "file:/w/r.pth"
    assert named_start({"weights": None, "pretrained": False}, None) == "scratch"
    assert named_start({"estimator": "x"}, None) == ""  # a table model: no start


def test_shipped_transfer_comparison_parses_without_downloading():
    spec = load_spec(Path("configs/compare/transfer.yaml"))
    kinds = {c.name: c for c in spec.candidates}
    assert any(c.source("backbone") for c in kinds.values())
    assert any("--model.pretrained=true" in c.args for c in kinds.values())
