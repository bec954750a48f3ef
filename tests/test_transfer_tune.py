"""tune.py's space over pretrained backbones and the recipe keys: checked before trial 1
without reading or downloading any weights; a bad weights name fails there in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlcycle.core.errors import UserError
from mlcycle.selection.tune.setup import Tuning
from mlcycle.selection.tune.spec import load_tune_spec

CLOSED = "http://127.0.0.1:9"  # nothing listens there: a download would fail at once


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """Empty weight caches and no network: anything read or downloaded would fail."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for key in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(key, CLOSED)
    return tmp_path


def test_shipped_finetune_space_is_checked_offline(offline):
    spec = load_tune_spec(Path("configs/tune/finetune.yaml"))
    keys = {p.key: p for p in spec.space}
    assert {"model.arch", "model.freeze_epochs", "model.lr_decay", "model.ema"} <= set(keys)
    assert keys["model.freeze_epochs"].kind == "int" and None in keys["model.ema"].choices
    tuning = Tuning(spec, offline / "study", [])
    tuning.check_space()  # every arch with pretrained=true, both ends of every range
    assert not list((offline / "torch_home").rglob("*.pth"))
    assert not (offline / "hf_home").exists() or not list(
        (offline / "hf_home").rglob("*.safetensors")
    )


def test_a_bad_weights_tag_in_the_space_fails_before_trial_1(offline, tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(
        "train: [configs/quickstart.yaml]\n"
        "args: [--model.pretrained=true]\n"
        "space:\n"
        "  model.arch: {choices: [timm/resnet18.a1_in1k, timm/resnet18.no_such_tag]}\n"
        "  model.lr_decay: {low: 0.5, high: 1.0}\n"
    )
    tuning = Tuning(load_tune_spec(path), tmp_path / "study", [])
    with pytest.raises(UserError, match="no_such_tag.*not a timm pretrained tag"):
        tuning.check_space()
