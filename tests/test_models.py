"""Every registered architecture builds for any channels and classes and runs forward/backward."""

from __future__ import annotations

import pytest
import torch

from mlcycle.core.errors import UserError
from mlcycle.models import build_model, list_models

INPUT_SIZE = {
    "vit_b_16": 224
}  # ViT's position embeddings fix its input size (arch_options.image_size)


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("in_channels", [1, 3])
def test_registered_model_adapts_channels_and_classes(name, in_channels):
    torch.manual_seed(0)
    model = build_model(name, in_channels, num_classes=5)
    size = INPUT_SIZE.get(name, 64)
    x = torch.randn(2, in_channels, size, size)
    out = model(x)
    assert out.shape == (2, 5)
    out.sum().backward()


def test_local_weights_load_and_skip_mismatched_layers(tmp_path):
    source = build_model("resnet18", 3, num_classes=1000)
    path = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), path)
    target = build_model("resnet18", 1, num_classes=4, weights=str(path))
    # The body is taken from the file; the classifier keeps its own shape.
    assert torch.equal(target.layer1[0].conv1.weight, source.layer1[0].conv1.weight)
    assert target.fc.weight.shape == (4, 512)
    # A grayscale stem is the sum of the RGB stem.
    assert torch.allclose(target.conv1.weight, source.conv1.weight.sum(dim=1, keepdim=True))


def test_weights_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        build_model("small_cnn", 1, 2, weights=str(tmp_path / "none.pth"))
    bad = tmp_path / "bad.pth"
    bad.write_text("not a checkpoint")
    with pytest.raises(UserError, match="cannot be read"):
        build_model("small_cnn", 1, 2, weights=str(bad))
    other = tmp_path / "other.pth"
    torch.save({"nothing.weight": torch.zeros(3)}, other)
    with pytest.raises(UserError, match="matches no layer"):
        build_model("small_cnn", 1, 2, weights=str(other))


def test_unknown_arch_suggests_the_closest():
    with pytest.raises(UserError, match="did you mean 'resnet18'"):
        build_model("resnet17", 3, 2)
