"""Albumentations pipelines built from the config.

A config lists augmentations by albumentations class name with their arguments::

    train_transforms:
      - {name: Affine, rotate: [-10, 10], translate_percent: [-0.05, 0.05], p: 0.5}
      - {name: HorizontalFlip, p: 0.5}

They run on training images only, after the resize and before normalization.
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any

import albumentations as A
from albumentations.pytorch import ToTensorV2

from mlcycle.core.errors import UserError


def _transform_names() -> list[str]:
    return [
        n
        for n in dir(A)
        if isinstance(getattr(A, n), type) and issubclass(getattr(A, n), A.BasicTransform)
    ]


def build_transform(spec: dict[str, Any], where: str) -> A.BasicTransform:
    """One albumentations transform from ``{name: ..., **kwargs}``; errors name ``where``."""
    if not isinstance(spec, dict) or "name" not in spec:
        raise UserError(
            f"{where}: each transform needs a 'name' key, e.g. {{name: HorizontalFlip, p: 0.5}}"
        )
    kwargs = dict(spec)
    name = kwargs.pop("name")
    cls = getattr(A, str(name), None)
    if not (isinstance(cls, type) and issubclass(cls, A.BasicTransform)):
        close = difflib.get_close_matches(str(name), _transform_names(), n=1)
        hint = (
            f"; did you mean '{close[0]}'?"
            if close
            else "; use an albumentations transform class name"
        )
        raise UserError(f"{where}: unknown transform '{name}'{hint}")
    params = inspect.signature(cls.__init__).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        for key in kwargs:
            if key not in params:
                close = difflib.get_close_matches(key, [p for p in params if p != "self"], n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                raise UserError(f"{where}: {name} has no argument '{key}'{hint}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(first[:3]) if first else type(exc).__name__
        raise UserError(f"{where}: invalid arguments for {name}: {detail}") from exc


def build_augmentations(specs: list[dict[str, Any]] | None, key: str) -> list[A.BasicTransform]:
    return [build_transform(spec, f"{key}[{i}]") for i, spec in enumerate(specs or [])]


def finish(
    augment: list[A.BasicTransform], mean: list[float], std: list[float], seed: int | None = None
) -> A.Compose:
    """Augmentations (possibly none), then normalization and conversion to a CHW float tensor."""
    steps = [*augment, A.Normalize(mean=mean, std=std, max_pixel_value=255.0), ToTensorV2()]
    return A.Compose(steps, seed=seed)


def resize(height: int, width: int) -> A.Resize:
    return A.Resize(height=height, width=width)


def check_pixels(value: int | list[int], key: str) -> tuple[int, int]:
    """``image_size`` as ``(height, width)``; one number means a square."""
    size = [value, value] if isinstance(value, int) else list(value)
    if len(size) != 2 or min(size) < 1:
        raise UserError(f"{key}={value} must be a positive size or [height, width]")
    return int(size[0]), int(size[1])
