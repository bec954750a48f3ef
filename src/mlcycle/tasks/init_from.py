"""``model.init_from: RUN_DIR``: start from an earlier mlcycle run's best checkpoint.

The run is checked when the task is built (before any data is read): it must be a folder
``train.py`` wrote, of the same task, or of a task this one declares in ``starts_from``
(segmentation and detection start their backbone from a classification run). The weights load
when training starts (``Task.configure_model``), from ``checkpoints/best.ckpt`` with
``torch.load(weights_only=True)``, into the network (``self.model``):

* tensors match by name, as they are or under the network's ``backbone.``, ``backbone.body.``
  or ``encoder.`` prefix (a classifier's ``features.`` dropped, as torchvision's backbones
  drop it); whichever placement matches the most names wins;
* a tensor whose shape differs (a new set of classes: the classifier) keeps its fresh
  initialisation and is reported by name, one line each;
* tensors of this network that the run lacks (a decoder, a detector's heads) keep theirs.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from mlcycle.core.errors import UserError
from mlcycle.models.groups import layer_groups

CHECKPOINT = Path("checkpoints") / "best.ckpt"
PREFIXES = ("", "backbone.", "backbone.body.", "encoder.")
STRIPS = ("", "features.")


@dataclass(frozen=True)
class InitRun:
    """A checked ``init_from`` run: its folder, task and kind of data."""

    path: Path
    task: str
    data_kind: str | None

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT


_RESTORING = ContextVar("restoring", default=False)


@contextmanager
def restoring() -> Iterator[None]:
    """While a task is rebuilt from its own checkpoint, ``init_from`` is not read: the start
    run may be gone, and the checkpoint holds the weights anyway."""
    token = _RESTORING.set(True)
    try:
        yield
    finally:
        _RESTORING.reset(token)


def is_restoring() -> bool:
    """True while a task is rebuilt from its own checkpoint (inside :func:`restoring`)."""
    return _RESTORING.get()


def check_init_run(path: str | None, task_class: type) -> InitRun | None:
    """The run ``path`` names, checked against ``task_class``; ``None`` when not set or when
    the task is being restored from its own checkpoint."""
    if path is None or is_restoring():
        return None
    folder = Path(path).expanduser()
    config_file = folder / "config.yaml"
    if not config_file.is_file():
        raise UserError(
            f"model.init_from '{path}' is not an mlcycle run directory (no config.yaml); give a folder train.py wrote"
        )
    config = yaml.safe_load(config_file.read_text()) or {}
    task = _declared(config.get("model"), "task_name") or "unknown"
    kind = _declared(config.get("data"), "data_kind")
    accepted = (task_class.task_name, *getattr(task_class, "starts_from", ()))
    if task not in accepted:
        on = f" on {kind} data" if kind else ""
        raise UserError(
            f"model.init_from '{path}' is a {task} run{on}; the {task_class.task_name} task "
            f"starts from runs of: {', '.join(accepted)}"
        )
    run = InitRun(folder, task, kind)
    if not run.checkpoint.is_file():
        raise UserError(
            f"model.init_from '{path}' has no {CHECKPOINT}; did its training finish an epoch?"
        )
    return run


def check_data_kind(run: InitRun, task_name: str, data_kind: str | None) -> None:
    """A run of the same task on another kind of data is refused too."""
    same_task = run.task == task_name
    if same_task and run.data_kind and data_kind and run.data_kind != data_kind:
        raise UserError(
            f"model.init_from '{run.path}' trained on {run.data_kind} data; this run's data is {data_kind}"
        )


def _declared(section: Any, attribute: str) -> str | None:
    """``attribute`` of the class a config section names (``class_path``), if importable."""
    class_path = section.get("class_path") if isinstance(section, dict) else None
    if not isinstance(class_path, str) or "." not in class_path:
        return None
    module, _, name = class_path.rpartition(".")
    try:
        value = getattr(getattr(importlib.import_module(module), name), attribute, None)
    except (ImportError, AttributeError):
        return None
    return value if isinstance(value, str) and value else None


def load_init(network: nn.Module, run: InitRun, class_names: list[str] | None = None) -> list[str]:
    """Load ``run``'s weights into ``network``; returns the lines that say what happened. When
    the run was trained on other classes than ``class_names``, its head is not loaded (its
    rows would name the wrong classes) even where the shapes agree."""
    try:
        checkpoint = torch.load(run.checkpoint, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a bad file
        raise UserError(f"model.init_from: {run.checkpoint} cannot be read: {exc}") from exc
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else {}
    source = {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
    source = source or dict(state)
    own = network.state_dict()
    mapping = best_mapping(source, own)
    equal = {k: source[s] for k, s in mapping.items() if own[k].shape == source[s].shape}
    if not equal:
        raise UserError(
            f"model.init_from '{run.path}': no tensor of its network fits this one; is it another architecture?"
        )
    lines = _new_classes(network, run, class_names, equal)
    network.load_state_dict(equal, strict=False)
    lines += [
        f"init_from: {k} re-initialised (shape {tuple(source[s].shape)} in the run, {tuple(own[k].shape)} here)"
        for k, s in mapping.items()
        if k not in equal and own[k].shape != source[s].shape
    ]
    new = len(own) - len(mapping)
    lines.append(
        f"init_from {run.path}: {len(equal)} of {len(own)} tensors loaded from {run.checkpoint.name}"
        + (f", {len(mapping) - len(equal)} re-initialised" if len(mapping) > len(equal) else "")
        + (f", {new} new to this network kept their initialisation" if new else "")
    )
    return lines


def best_mapping(source: dict[str, Any], own: dict[str, Any]) -> dict[str, str]:
    """``{own key: source key}`` under the placement that matches the most names."""
    best: dict[str, str] = {}
    for prefix in PREFIXES:
        for strip in STRIPS:
            mapping = {}
            for key in source:
                target = prefix + key.removeprefix(strip)
                if target in own:
                    mapping[target] = key
            if len(mapping) > len(best):
                best = mapping
    return best


def _new_classes(
    network: nn.Module, run: InitRun, class_names: list[str] | None, equal: dict[str, Any]
) -> list[str]:
    """Drop the head's tensors from ``equal`` when the run's classes are not ``class_names``;
    the line that says so (none when the classes agree or are unknown)."""
    data_file = run.path / "data.json"
    if not class_names or not data_file.is_file():
        return []
    before = json.loads(data_file.read_text()).get("class_names")
    if not before or list(before) == list(class_names):
        return []
    head = {id(p) for p in layer_groups(network)[-1].parameters()}
    dropped = [k for k, p in network.named_parameters() if id(p) in head and k in equal]
    for key in dropped:
        del equal[key]
    if not dropped:
        return []
    return [
        f"init_from: the run's classes ({', '.join(map(str, before[:6]))}{', ...' if len(before) > 6 else ''}) "
        f"are not this data's: its head ({', '.join(dropped)}) re-initialised"
    ]
