"""timm's architectures as ``timm/<name>`` (any name of ``timm.list_models()``) and its
pretrained tags (``model.weights: a1_in1k``, ``timm/resnet18.a1_in1k``, or
``model.pretrained: true`` for the default tag).

timm builds the model for the data's channels and classes, and loads pretrained weights its own
way: from the Hugging Face cache (downloaded with its progress bar when online), the classifier
re-initialized for other classes, the first convolution adapted to other channels
(``adapt_input_conv``). timm is imported only when a ``timm/`` name is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from mlcycle.core.errors import UserError
from mlcycle.models.pretrained import closest, describe_transform, offline_error, unreachable

PREFIX = "timm/"


def is_timm(arch: str) -> bool:
    return arch.startswith(PREFIX)


def _timm() -> Any:
    try:
        import timm
    except ImportError as exc:
        raise UserError("timm/ architectures need timm: pip install timm") from exc
    return timm


def names() -> list[str]:
    """Every timm architecture, as ``timm/<name>``."""
    return [PREFIX + n for n in _timm().list_models()]


def model_name(arch: str, tag: bool | str = False, key: str = "model.arch") -> str:
    """timm's name for ``timm/<arch>[.<tag>]`` with weights ``tag`` (a tag, ``<arch>.<tag>`` or
    ``timm/<arch>.<tag>``; ``True``: the arch's own tag or timm's default), checked."""
    timm = _timm()
    name = arch.removeprefix(PREFIX)
    base, _, own_tag = name.partition(".")
    if base not in timm.list_models():
        raise UserError(f"unknown {key} '{arch}' (timm); {closest(arch, names())}")
    if isinstance(tag, str):
        given = tag.removeprefix(PREFIX)
        given_base, dot, given_tag = given.rpartition(".")
        if dot and given_base != base:
            raise UserError(
                f"model.weights={tag} are timm weights of '{given_base}', not of '{arch}'"
            )
        own_tag = given_tag
    full = f"{base}.{own_tag}" if own_tag else base
    if (tag or own_tag) and _pretrained_cfg(full) is None:
        tags = timm.list_pretrained(f"{base}.*")
        raise UserError(
            f"model.weights: '{full}' is not a timm pretrained tag; {closest(full, tags) if tags else f'{base} has none'}"
        )
    return full


def _pretrained_cfg(full: str) -> Any:
    try:
        return _timm().models.get_pretrained_cfg(full)
    except RuntimeError:  # an unknown tag
        return None


def build_timm(
    arch: str, in_channels: int, num_classes: int, pretrained: bool | str = False, **options: Any
) -> nn.Module:
    """``timm.create_model`` for the data's channels and classes; ``pretrained``: the tag's
    weights through timm (Hugging Face cache), its classifier fresh for ``num_classes``."""
    full = model_name(arch, pretrained)
    return create(full, bool(pretrained), num_classes=num_classes, in_chans=in_channels, **options)


def create(full: str, pretrained: bool, in_chans: int = 3, **kwargs: Any) -> nn.Module:
    """``timm.create_model(full, pretrained=...)``; with pretrained weights neither in the cache
    nor reachable, one line naming the file and the folder to put it in."""
    timm = _timm()
    try:
        if not pretrained:
            return timm.create_model(full, in_chans=in_chans, **kwargs)
        cfg = timm.models.get_pretrained_cfg(full).to_dict()
        source = f"timm {cfg['architecture']}.{cfg['tag']}"
        _check_available(cfg, source)
        model = timm.create_model(full, pretrained=True, in_chans=in_chans, **kwargs)
    except TypeError as exc:
        raise UserError(f"model.arch_options {kwargs} do not fit timm '{full}': {exc}") from exc
    except (OSError, ConnectionError) as exc:
        file, folder = _cache_place(cfg)
        reason = " ".join(str(exc).split())[:100]
        raise offline_error(f"{source} weights", file, folder, reason) from exc
    except RuntimeError as exc:  # a cached file that does not fit the architecture
        raise UserError(f"{source}: {' '.join(str(exc).split())[:200]}") from exc
    if in_chans != 3:
        print(
            f"model.weights: {source} take 3 input channels, the data {in_chans}: the first "
            "convolution's weights adapted (timm's adapt_input_conv)"
        )
    return model


def _check_available(cfg: dict[str, Any], source: str) -> None:
    """Stop at once, in one line, when the weights are not cached and cannot be downloaded."""
    file, folder = _cache_place(cfg)
    note = f" (refs/main naming <commit>, as 'hf download {cfg.get('hf_hub_id')}' leaves it)"
    note = note if cfg.get("hf_hub_id") else ""
    if cfg.get("hf_hub_id"):
        from huggingface_hub import constants, hf_hub_url, try_to_load_from_cache

        repo = cfg["hf_hub_id"].split("@")[0]
        if any(
            isinstance(try_to_load_from_cache(repo, f), str) for f in (file, "pytorch_model.bin")
        ):
            return
        if constants.HF_HUB_OFFLINE:
            raise offline_error(f"{source} weights", file, folder, "HF_HUB_OFFLINE is set", note)
        url = hf_hub_url(repo, file)
    else:
        if (folder / file).is_file():
            return
        url = str(cfg.get("url"))
    reason = unreachable(url)
    if reason is not None:
        raise offline_error(f"{source} weights", file, folder, reason, note)


def _cache_place(cfg: dict[str, Any]) -> tuple[str, Path]:
    """The file timm looks for and the folder it keeps it in."""
    if cfg.get("hf_hub_id"):
        from huggingface_hub import constants

        repo = cfg["hf_hub_id"].split("@")[0]
        # the Hugging Face cache's layout: refs/main names the snapshot folder holding the file
        folder = Path(constants.HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}"
        return cfg.get("hf_hub_filename") or "model.safetensors", folder / "snapshots" / "<commit>"
    import torch

    url = str(cfg.get("url") or cfg.get("file") or "")
    return url.rsplit("/", 1)[-1], Path(torch.hub.get_dir()) / "checkpoints"


def preprocessing(arch: str, pretrained: bool | str = False) -> dict[str, Any] | None:
    """The input timm's pretrained tag expects (``resolve_data_config``); None without one."""
    if not pretrained:
        return None
    timm = _timm()
    full = model_name(arch, pretrained)
    cfg = timm.models.get_pretrained_cfg(full)
    data = timm.data.resolve_data_config({}, pretrained_cfg=cfg.to_dict())
    return describe_transform(
        f"timm {cfg.architecture}.{cfg.tag}",
        data["mean"],
        data["std"],
        data["input_size"][1:],
        data.get("interpolation"),
        crop_pct=data.get("crop_pct"),
    )
