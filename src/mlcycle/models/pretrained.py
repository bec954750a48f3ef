"""Pretrained weights, whatever library they come from: reading a local file, fitting a state
dict onto a model (a new head, other input channels), and the one-line errors.

The libraries' own lookups (torchvision's weight enums, timm's pretrained tags) live in
``torchvision_weights.py`` and ``timm_models.py``; both end here.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mlcycle.core.errors import UserError

WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors")
LOCAL_HINT = "or point model.weights at a local .pth or .safetensors file"


def is_local_file(weights: str) -> bool:
    """A path (it has a folder or a weights file's suffix) rather than a weights name."""
    return "/" in weights or "\\" in weights or weights.lower().endswith(WEIGHT_SUFFIXES)


def closest(name: str, names: Iterable[str], n: int = 5) -> str:
    """``'closest: a, b, c'`` among ``names`` (or the first few when none is close)."""
    names = list(names)
    close = difflib.get_close_matches(name, names, n=n, cutoff=0.5) or names[:n]
    return f"closest: {', '.join(close)}" if close else "none exist"


def did_you_mean(name: str, names: Iterable[str]) -> str:
    """``"did you mean 'x'? "`` with the closest of ``names``, as the registries say it."""
    close = difflib.get_close_matches(name, list(names), n=1)
    return f"did you mean '{close[0]}'? " if close else ""


def read_state_dict(path: str, key: str = "model.weights") -> dict[str, torch.Tensor]:
    """A local ``.pt``/``.pth`` (read with ``weights_only``) or ``.safetensors`` state dict; a
    Lightning checkpoint's ``state_dict`` and a common ``model.`` prefix are unwrapped."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(
            f"{key} file '{path}' does not exist; give a local .pth or .safetensors file"
        )
    try:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(file), device="cpu")
        else:
            state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch and safetensors raise several types for a bad file
        raise UserError(f"{key} file '{path}' cannot be read as a state dict: {exc}") from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{key} file '{path}' does not hold a state dict of tensors")
    if state and all(k.startswith("model.") for k in state):
        state = {k.removeprefix("model."): v for k, v in state.items()}
    return state


def adapt_input_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """A first convolution's weights for ``in_channels`` inputs, as timm's ``adapt_input_conv``
    does: summed over the channels for one, repeated and rescaled for more."""
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    repeat = math.ceil(in_channels / weight.shape[1])
    return weight.repeat(1, repeat, 1, 1)[:, :in_channels] * (weight.shape[1] / in_channels)


def _shape(t: torch.Tensor) -> str:
    return "x".join(str(s) for s in t.shape) or "scalar"


def fit_state_dict(
    model: nn.Module, state: dict[str, torch.Tensor], source: str, key: str = "model.weights"
) -> None:
    """Load ``state`` into ``model``, the way fine-tuning needs it.

    A layer whose output size differs (the classifier of other classes) keeps its fresh
    initialization; a first convolution with other input channels is adapted
    (:func:`adapt_input_conv`) and said so in one line. Anything else that does not fit (a
    layer of the model missing from the file, another shape) is one line naming the first
    such layer: the weights are for another architecture.
    """
    own = model.state_dict()
    stem = next((n for n, t in own.items() if t.ndim == 4), None)  # the convolution of the image
    usable: dict[str, torch.Tensor] = {}
    for name, value in state.items():
        mine = own.get(name)
        if mine is None or mine.shape == value.shape:
            if mine is not None:
                usable[name] = value
            continue
        if name == stem and mine.shape[0] == value.shape[0] and mine.shape[2:] == value.shape[2:]:
            usable[name] = adapt_input_conv(value, mine.shape[1])
            print(
                f"{key}: '{name}' takes {value.shape[1]} input channel(s) in {source}, the data "
                f"{mine.shape[1]}: its weights adapted (timm's adapt_input_conv: summed or repeated)"
            )
        elif mine.ndim == value.ndim and mine.shape[1:] == value.shape[1:]:
            continue  # another number of outputs: a head for other classes keeps its init
        else:
            raise UserError(
                f"{key}: {source} does not fit this architecture: layer '{name}' is "
                f"{_shape(value)} there and {_shape(mine)} here; weights for another architecture?"
            )
    missing = [n for n in own if n not in state and not n.endswith("num_batches_tracked")]
    if not usable or len(missing) > len(own) // 2:
        first = missing[0] if missing else next(iter(own), "none")
        fit = "matches no layer of" if not usable else "does not fit"
        raise UserError(
            f"{key}: {source} {fit} this architecture (it has no layer '{first}'; "
            f"{len(usable)} of {len(own)} tensors match); weights for another architecture?"
        )
    model.load_state_dict(usable, strict=False)


def offline_error(what: str, file: str, folder: Path, reason: str, note: str = "") -> UserError:
    """The one line for weights neither in the cache nor reachable."""
    return UserError(
        f"{what} are not in the cache and cannot be downloaded ({reason}): put '{file}' in "
        f"'{folder}'{note}, {LOCAL_HINT}"
    )


def describe_transform(
    source: str,
    mean: Iterable[float],
    std: Iterable[float],
    size: Iterable[int] | None = None,
    interpolation: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The input the weights were trained on, as data.json and model.json record it."""
    spec: dict[str, Any] = {
        "weights": source,
        "mean": [round(float(v), 6) for v in mean],
        "std": [round(float(v), 6) for v in std],
    }
    if size is not None:
        spec["image_size"] = [int(v) for v in size]
    if interpolation:
        spec["interpolation"] = interpolation
    spec.update(extra)
    return spec


def fit_backbone(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """A classifier's ``state`` into ``model.backbone`` (``.body`` for FPN detectors).

    torchvision classifiers keep their layers under ``features.`` (MobileNet) or at the top
    (ResNet); their detection and segmentation backbones drop that prefix. The classifier's
    head has no place there; a first convolution with other input channels is adapted.
    """
    target = getattr(model, "backbone", None)
    target = getattr(target, "body", target)
    if not isinstance(target, nn.Module):
        raise UserError(
            f"model.backbone_weights: this architecture has no torchvision backbone; use model.weights for {source}"
        )
    own = target.state_dict()
    renamed = {k.removeprefix("features."): v for k, v in state.items()}
    usable = {k: v for k, v in renamed.items() if k in own}
    if not usable:
        raise UserError(
            f"model.backbone_weights: {source} matches no layer of this backbone; is it for another architecture?"
        )
    fit_state_dict(target, usable, source, key="model.backbone_weights")


def unreachable(url: str, timeout: float = 5.0) -> str | None:
    """Why ``url`` cannot be reached (no network, no such host), or None when it answers.
    Asked before a library downloads, so that an offline run stops at once instead of after
    the library's retries. Proxies set in the environment are used, as the libraries do."""
    from urllib.error import HTTPError, URLError
    from urllib.request import Request, urlopen

    try:
        urlopen(Request(url, method="HEAD"), timeout=timeout).close()
    except HTTPError:
        return None  # the server answered; the library reports its own errors
    except (URLError, OSError) as exc:
        return " ".join(str(getattr(exc, "reason", exc)).split())[:120]
    return None
