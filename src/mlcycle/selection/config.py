"""train.py's resolved config for a list of arguments, and what it names: the data module and
the task class. compare.py, tune.py and retrain.py start from it."""

from __future__ import annotations

import logging
from typing import Any

import yaml

from mlcycle.core.errors import UserError
from mlcycle.core.imports import import_object


def resolve_config(args: list[str]) -> dict[str, Any]:
    """train.py's resolved config for ``args`` (checked like train.py checks it), as a dict."""
    from mlcycle.training.cli import MLCycleCLI
    from mlcycle.training.fit import _quiet

    class _Resolve(MLCycleCLI):
        def before_instantiate_classes(self) -> None:
            pass

        def instantiate_classes(self) -> None:
            pass

    _quiet()
    seed_log = logging.getLogger("lightning.fabric.utilities.seed")
    level = seed_log.level
    seed_log.setLevel(logging.WARNING)  # "Seed set to 42": the runs themselves say it
    try:
        cli = _Resolve(args)
    finally:
        seed_log.setLevel(level)
    return yaml.safe_load(cli.parser.dump(cli.config, skip_unset=False, skip_validation=True))


def build_data(config: dict[str, Any]) -> Any:
    """The data module of a resolved config."""
    cls = import_object(config["data"]["class_path"], "data class")
    return cls(**dict(config["data"].get("init_args") or {}))


def task_class(config: dict[str, Any]) -> type:
    """The task (LightningModule) class a resolved config or a run's config.yaml names."""
    return import_object(config["model"]["class_path"], "model class")


def task_name(config: dict[str, Any]) -> str:
    """The ``task_name`` the config's task declares: the key of its stages' registries."""
    cls = task_class(config)
    name = getattr(cls, "task_name", None)  # the Task contract's class attribute
    if not isinstance(name, str):
        raise UserError(
            f"model class '{config['model']['class_path']}' declares no task_name; a task "
            "subclasses mlcycle.tasks.base.Task and names itself"
        )
    return name
