"""Where a candidate started: the leaderboard's ``start`` column.

A train.py run's start is read from its own resolved ``config.yaml`` (what ran, not what the
comparison YAML meant): ``init_from:<run>`` when it started from an earlier run, the weights'
name when it started from pretrained ones (``IMAGENET1K_V1``, ``resnet18.a1_in1k``: the label
train.py recorded in ``data.preprocessing``), ``file:<path>`` for a local weights file, else
``scratch``. A task without these keys (a table model) has no start: ``""``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mlcycle.models.pretrained import is_local_file

START_KEYS = ("weights", "pretrained", "init_from", "backbone_weights")


def weights_words(label: str) -> str:
    """A short name of recorded weights: ``torchvision ResNet18_Weights.IMAGENET1K_V1`` ->
    ``IMAGENET1K_V1``, ``timm resnet18.a1_in1k`` -> ``resnet18.a1_in1k``."""
    library, _, name = label.partition(" ")
    if not name:
        return label
    return name.rsplit(".", 1)[-1] if library == "torchvision" else name


def named_start(init_args: dict[str, Any], preprocessing: dict[str, Any] | None) -> str:
    """The start of a task's ``init_args`` (and the data's recorded ``preprocessing``)."""
    if not any(key in init_args for key in START_KEYS):
        return ""
    if init_args.get("init_from"):
        return f"init_from:{init_args['init_from']}"
    weights = init_args.get("weights")
    recorded = (preprocessing or {}).get("weights")
    if weights and is_local_file(str(weights)):
        return f"file:{weights}"
    if weights or init_args.get("pretrained"):
        return weights_words(recorded) if recorded else str(weights or "pretrained")
    backbone = init_args.get("backbone_weights")
    if backbone:
        return f"backbone {weights_words(recorded) if recorded else backbone}"
    return "scratch"


def run_start(run_dir: Path) -> str:
    """The start of the train.py run in ``run_dir``, from its ``config.yaml``; ``""`` when it
    has none (the run failed before writing it)."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        return ""
    config = yaml.safe_load(path.read_text()) or {}
    model = (config.get("model") or {}).get("init_args") or {}
    data = (config.get("data") or {}).get("init_args") or {}
    return named_start(model, data.get("preprocessing"))


def candidate_start(records: list[dict[str, Any]]) -> str:
    """One start for a candidate's folds (they agree unless a run changed under it)."""
    starts = list(dict.fromkeys(str(r.get("start") or "") for r in records))
    return " / ".join(s for s in starts if s)
