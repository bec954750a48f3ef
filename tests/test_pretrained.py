"""Pretrained weights by name, offline: small weight files written under the exact names
torchvision (torch.hub) and timm (the Hugging Face cache) look for, in temporary caches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision
from conftest import train_args, write_folder
from safetensors.torch import save_file

from mlcycle.core.errors import UserError
from mlcycle.models.registry import (
    CLASSIFICATION_MODELS,
    SEGMENTATION_MODELS,
    build_architecture,
    build_model,
    preprocessing,
)

CLOSED = "http://127.0.0.1:9"  # nothing listens there: every download fails at once


@pytest.fixture
def torch_home(tmp_path, monkeypatch) -> Path:
    """An empty TORCH_HOME, and no network for urllib (torch.hub's downloader)."""
    home = tmp_path / "torch_home"
    (home / "hub" / "checkpoints").mkdir(parents=True)
    monkeypatch.setenv("TORCH_HOME", str(home))
    for key in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(key, CLOSED)
    for key in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(key, raising=False)
    return home / "hub" / "checkpoints"


def cache_torchvision(folder: Path, arch: str, file: str, **kwargs) -> dict[str, torch.Tensor]:
    """A randomly initialised ``arch``'s state dict saved as torch.hub's file ``file``."""
    state = torchvision.models.get_model(arch, weights=None, **kwargs).state_dict()
    torch.save(state, folder / file)
    return state


def test_torchvision_weights_by_name_load_from_torch_hub_cache(torch_home, capsys):
    state = cache_torchvision(torch_home, "mobilenet_v3_small", "mobilenet_v3_small-047dcff4.pth")
    model = build_model("mobilenet_v3_small", 3, 4, weights="IMAGENET1K_V1")
    own = model.state_dict()
    assert torch.equal(own["features.3.block.0.0.weight"], state["features.3.block.0.0.weight"])
    assert own["classifier.3.weight"].shape == (4, 1024)  # a fresh head for 4 classes
    # pretrained: true is DEFAULT, the same file; grayscale data sums the stem's weights
    gray = build_model("mobilenet_v3_small", 1, 4, pretrained=True).state_dict()
    stem = "features.0.0.weight"
    assert torch.allclose(gray[stem], state[stem].sum(dim=1, keepdim=True))
    assert "takes 3 input channel(s)" in capsys.readouterr().out


def test_unknown_names_list_the_closest(torch_home):
    with pytest.raises(UserError, match="closest: IMAGENET1K_V1"):
        build_model("mobilenet_v3_small", 3, 4, weights="IMAGENET1K_V3")
    with pytest.raises(UserError, match="timm/convnext_nano"):
        build_model("timm/convnext_nan", 3, 4)
    with pytest.raises(UserError, match="closest: resnet18, timm/resnet18"):
        build_model("resnt18", 3, 4)
    with pytest.raises(UserError, match="'small_cnn' has no weights by name"):
        build_model("small_cnn", 3, 4, weights="IMAGENET1K_V1")


def test_local_files_pth_and_safetensors_and_a_mismatch_named(tmp_path):
    state = torchvision.models.resnet18(num_classes=3).state_dict()
    torch.save(state, tmp_path / "r18.pth")
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "r18.safetensors")
    for file in ("r18.pth", "r18.safetensors"):
        loaded = build_model("resnet18", 3, 3, weights=str(tmp_path / file)).state_dict()
        assert all(torch.equal(loaded[k], v) for k, v in state.items())
    torch.save({**state, "layer1.0.conv1.weight": torch.zeros(64, 32, 3, 3)}, tmp_path / "b.pth")
    with pytest.raises(UserError, match=r"layer 'layer1\.0\.conv1\.weight' is 64x32x3x3 there"):
        build_model("resnet18", 3, 3, weights=str(tmp_path / "b.pth"))
    with pytest.raises(UserError, match="weights for another architecture"):
        build_model("mobilenet_v3_small", 3, 3, weights=str(tmp_path / "r18.pth"))


def test_segmentation_backbone_weights_by_name(torch_home):
    state = cache_torchvision(torch_home, "mobilenet_v3_large", "mobilenet_v3_large-8738ca79.pth")
    model = build_architecture(
        SEGMENTATION_MODELS, "lraspp_mobilenet_v3_large", 3, 2, backbone_weights="IMAGENET1K_V1"
    )
    body = model.backbone.state_dict()
    assert torch.equal(body["4.block.1.0.weight"], state["features.4.block.1.0.weight"])


def test_preprocessing_comes_from_the_weights_metadata():
    tv = preprocessing(CLASSIFICATION_MODELS, "resnet18", weights="IMAGENET1K_V1")
    assert tv["image_size"] == [224, 224] and tv["mean"] == [0.485, 0.456, 0.406]
    tm = preprocessing(CLASSIFICATION_MODELS, "timm/resnet18.a1_in1k", pretrained=True)
    assert tm["interpolation"] == "bicubic" and tm["weights"] == "timm resnet18.a1_in1k"
    assert preprocessing(CLASSIFICATION_MODELS, "resnet18") is None  # from scratch: measured


def test_offline_without_the_file_is_one_line_and_exit_2(torch_home, tmp_path, capsys):
    from mlcycle.commands.train import main

    data = write_folder(tmp_path / "images", per_class=4)
    args = train_args(data, tmp_path / "run", "--model.arch=resnet18", "--model.pretrained=true")
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if not line.startswith("INFO: Seed set")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert f"'resnet18-f37072fd.pth' in '{torch_home}'" in lines[0]
    assert "model.weights" in lines[0] and "Traceback" not in err


def test_train_and_export_record_the_weights_preprocessing(torch_home, tmp_path):
    from export_helpers import export_run

    from mlcycle.commands.train import main

    cache_torchvision(torch_home, "mobilenet_v3_small", "mobilenet_v3_small-047dcff4.pth")
    data = write_folder(tmp_path / "images", per_class=6)
    args = train_args(data, tmp_path / "run", "--model.arch=mobilenet_v3_small")
    args += ["--model.weights=IMAGENET1K_V1", "--data.image_size=32"]
    run = Path(main(args))
    info = json.loads((run / "data.json").read_text())
    assert info["weights_preprocessing"]["weights"].endswith(
        "MobileNet_V3_Small_Weights.IMAGENET1K_V1"
    )
    assert info["mean"] == [pytest.approx((0.485 + 0.456 + 0.406) / 3, abs=1e-5)]  # grayscale
    export_run(run, "--format", "onnx")
    spec = json.loads((run / "export" / "model.json").read_text())["input"]
    assert spec["mean"] == info["mean"]
    assert spec["weights_preprocessing"]["image_size"] == [224, 224]


TIMM_CHECK = r"""
import json, sys, torch, timm
from pathlib import Path
from safetensors.torch import save_file
from mlcycle.core.errors import UserError
from mlcycle.models.registry import SEGMENTATION_MODELS, build_architecture, build_model

snapshot = Path(sys.argv[1]) / "hub" / "models--timm--test_resnet.r160_in1k"
(snapshot / "refs").mkdir(parents=True)
(snapshot / "refs" / "main").write_text("0" * 40)
(snapshot / "snapshots" / ("0" * 40)).mkdir(parents=True)
state = timm.create_model("test_resnet.r160_in1k").state_dict()
save_file({k: v.contiguous() for k, v in state.items()}, snapshot / "snapshots" / ("0" * 40) / "model.safetensors")
out = {}
model = build_model("timm/test_resnet", 1, 3, pretrained=True).state_dict()
out["equal"] = torch.equal(model["layer1.0.conv1.weight"], state["layer1.0.conv1.weight"])
out["stem_summed"] = torch.allclose(model["conv1.0.weight"], state["conv1.0.weight"].sum(1, keepdim=True))
unet = build_architecture(SEGMENTATION_MODELS, "unet", 3, 2, options={"encoder": "timm/test_resnet.r160_in1k"}, pretrained=True)
out["encoder_equal"] = torch.equal(unet.encoder.state_dict()["layer1.0.conv1.weight"], state["layer1.0.conv1.weight"])
out["unet_shape"] = list(unet(torch.zeros(1, 3, 40, 40)).shape)
try:
    build_model("timm/test_convnext", 3, 3, pretrained=True)
except UserError as exc:
    out["offline"] = str(exc)
print(json.dumps(out))
"""


def test_timm_tags_load_from_the_hugging_face_cache_offline(tmp_path):
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", TIMM_CHECK, str(tmp_path / "hf")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["equal"] and out["stem_summed"] and out["encoder_equal"]
    assert out["unet_shape"] == [1, 2, 40, 40]
    assert "'model.safetensors' in '" in out["offline"]
    assert "models--timm--test_convnext.r160_in1k" in out["offline"]
    assert "HF_HUB_OFFLINE is set" in out["offline"]
