"""Every registered segmentation and detection architecture builds for any channels and
classes, runs forward and backward, and gives outputs of the promised form."""

from __future__ import annotations

import pytest
import torch

from mlcycle.core.errors import UserError
from mlcycle.models import list_models
from mlcycle.models.registry import DETECTION_MODELS, SEGMENTATION_MODELS, build_architecture


@pytest.mark.parametrize("name", SEGMENTATION_MODELS.names())
@pytest.mark.parametrize("in_channels", [1, 3])
def test_segmentation_model_gives_full_resolution_logits(name, in_channels):
    torch.manual_seed(0)
    model = build_architecture(SEGMENTATION_MODELS, name, in_channels, num_classes=5)
    out = model(torch.randn(2, in_channels, 32, 32))
    logits = out["out"] if isinstance(out, dict) else out
    assert logits.shape == (2, 5, 32, 32)
    logits.sum().backward()


@pytest.mark.parametrize("name", DETECTION_MODELS.names())
@pytest.mark.parametrize("in_channels", [1, 3])
def test_detector_trains_and_detects(name, in_channels):
    torch.manual_seed(0)
    model = build_architecture(
        DETECTION_MODELS, name, in_channels, num_classes=4
    )  # 3 classes + background
    images = list(torch.randn(2, in_channels, 64, 64))
    targets = [
        {"boxes": torch.tensor([[4.0, 6.0, 30.0, 40.0]]), "labels": torch.tensor([2])},
        {"boxes": torch.zeros((0, 4)), "labels": torch.zeros(0, dtype=torch.long)},  # a negative
    ]
    losses = model(images, targets)
    loss = sum(losses.values())
    assert torch.isfinite(loss)
    loss.backward()
    model.eval()
    with torch.no_grad():
        detections = model(images)
    assert len(detections) == 2
    for d in detections:
        assert d["boxes"].shape[1:] == (4,) and len(d["scores"]) == len(d["labels"])
        assert (d["labels"] < 4).all()


def test_task_models_stay_out_of_the_classifier_registry():
    classifiers = set(list_models())
    assert not classifiers & set(SEGMENTATION_MODELS.names() + DETECTION_MODELS.names())


def test_anchor_sizes_and_local_backbone_weights(tmp_path):
    model = build_architecture(
        DETECTION_MODELS,
        "fasterrcnn_mobilenet_v3_large_fpn",
        3,
        3,
        options={"anchor_sizes": [8, 16, 32]},
    )
    assert model.rpn.anchor_generator.sizes[0] == (8, 16, 32)
    import torchvision

    classifier = torchvision.models.mobilenet_v3_large(weights=None)
    path = tmp_path / "mobilenet.pth"
    torch.save(classifier.state_dict(), path)
    model = build_architecture(
        DETECTION_MODELS, "fasterrcnn_mobilenet_v3_large_fpn", 3, 3, backbone_weights=str(path)
    )
    assert torch.equal(
        model.backbone.body["1"].block[0][0].weight, classifier.features[1].block[0][0].weight
    )
    seg = build_architecture(
        SEGMENTATION_MODELS, "lraspp_mobilenet_v3_large", 3, 2, backbone_weights=str(path)
    )
    assert torch.equal(
        seg.backbone["1"].block[0][0].weight, classifier.features[1].block[0][0].weight
    )
    with pytest.raises(UserError, match="no torchvision backbone"):
        build_architecture(SEGMENTATION_MODELS, "unet", 3, 2, backbone_weights=str(path))
    resnet = tmp_path / "resnet.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), resnet)
    with pytest.raises(UserError, match="matches no layer"):
        build_architecture(
            SEGMENTATION_MODELS, "lraspp_mobilenet_v3_large", 3, 2, backbone_weights=str(resnet)
        )


def test_unknown_task_arch_suggests_the_closest():
    with pytest.raises(UserError, match="did you mean 'unet'"):
        build_architecture(SEGMENTATION_MODELS, "unet2", 3, 2)
    with pytest.raises(UserError, match=r"unknown model.arch .* \(detection architecture\)"):
        build_architecture(DETECTION_MODELS, "yolov8", 3, 2)
