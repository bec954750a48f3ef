"""torchvision's pretrained weights by name (its weight enums), fetched by torch.hub into
``$TORCH_HOME/hub/checkpoints`` with its progress bar, or read from there offline."""

from __future__ import annotations

import os
import typing
from pathlib import Path
from typing import Any
from urllib.error import URLError
from urllib.parse import urlparse

import torch
import torchvision
from torchvision.models import WeightsEnum

from mlcycle.core.errors import UserError
from mlcycle.models.pretrained import closest, describe_transform, offline_error, unreachable

# Detectors normalize inside torchvision with ImageNet's statistics (GeneralizedRCNNTransform).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def weights_enum(arch: str, tag: str | bool, key: str = "model.weights") -> WeightsEnum:
    """``arch``'s weights named ``tag`` (``IMAGENET1K_V1``, ``DEFAULT``; ``True``: DEFAULT)."""
    try:
        enum = torchvision.models.get_model_weights(arch)
    except ValueError as exc:
        raise UserError(f"{key}: '{arch}' has no torchvision weights") from exc
    return _member(enum, "DEFAULT" if tag is True else str(tag), arch, key)


def backbone_enum(arch: str, tag: str | bool) -> WeightsEnum:
    """The classifier weights torchvision's ``arch`` builder takes as ``weights_backbone``."""
    hints = typing.get_type_hints(torchvision.models.get_model_builder(arch))
    enum = next(
        (a for a in typing.get_args(hints.get("weights_backbone")) if a is not type(None)), None
    )
    if enum is None:
        raise UserError(f"model.backbone_weights: '{arch}' takes no torchvision backbone weights")
    return _member(enum, "DEFAULT" if tag is True else str(tag), arch, "model.backbone_weights")


def _member(enum: type[WeightsEnum], tag: str, arch: str, key: str) -> WeightsEnum:
    name = tag.split(".")[-1]  # ResNet18_Weights.IMAGENET1K_V1 or IMAGENET1K_V1
    if name not in enum.__members__:
        names = list(enum.__members__)
        raise UserError(
            f"{key}={tag} is not a torchvision weight of '{arch}' ({enum.__name__}); {closest(name, names)}"
        )
    return enum[name]


def label(weights: WeightsEnum) -> str:
    return f"torchvision {type(weights).__name__}.{weights.name}"


def cached_file(weights: WeightsEnum) -> Path:
    """Where torch.hub keeps (or will keep) the weights' file."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)


def state_dict(weights: WeightsEnum) -> dict[str, torch.Tensor]:
    """The weights' state dict through torch.hub: from its cache, else downloaded (progress bar)."""
    file = cached_file(weights)
    if not file.is_file():
        reason = unreachable(weights.url)
        if reason is not None:
            raise offline_error(label(weights), file.name, file.parent, reason)
    try:
        return weights.get_state_dict(progress=True, check_hash=False)
    except (URLError, OSError, ConnectionError) as exc:
        reason = " ".join(str(getattr(exc, "reason", exc)).split())[:120]
        raise offline_error(label(weights), file.name, file.parent, reason) from exc
    except RuntimeError as exc:  # a truncated or foreign file in the cache
        raise UserError(f"{label(weights)}: '{file}' cannot be read ({exc}); delete it") from exc


def preprocessing(weights: WeightsEnum) -> dict[str, Any]:
    """mean, std, input size and interpolation of ``weights.transforms()``."""
    transform = weights.transforms()
    mean = getattr(transform, "mean", None) or IMAGENET_MEAN
    std = getattr(transform, "std", None) or IMAGENET_STD
    size = getattr(transform, "crop_size", None) or getattr(transform, "resize_size", None)
    if size is not None:
        size = list(size) * 2 if len(size) == 1 else list(size)
    mode = getattr(transform, "interpolation", None)
    return describe_transform(label(weights), mean, std, size, mode.value if mode else None)
