"""Read a training config the way ``train.py`` does, and build only its data module.

The parser is ``train.py``'s own kind (:class:`~mlcycle.training.cli.MLCycleParser`, a
jsonargparse ``LightningArgumentParser``): ``--config`` files compose in order, ``--data.KEY=VALUE``
and ``--data.init_args.KEY VALUE`` override them, ``data.class_path`` names any data module, and an
unknown or mistyped key is one ``error:`` line with the closest valid key (exit 2). The
``model``, ``trainer`` and ``seed_everything`` sections are read and ignored, so the file (and the
command line) that trains also validates. No model, trainer or run directory is built.
"""

from __future__ import annotations

import json
import sys
from argparse import ArgumentError
from collections.abc import Mapping, Sequence
from typing import Any

from jsonargparse import ActionConfigFile, Namespace
from lightning.pytorch import LightningDataModule

from mlcycle.core.errors import UserError
from mlcycle.training.parser import DEFAULT_DATA, MLCycleParser, one_line_error

# train.py's other top-level keys: a training config, or a run's resolved config.yaml, validates
IGNORED = {"model": dict | None, "trainer": dict | None, "seed_everything": int | bool | None}
IGNORED |= {"objective": dict | None, "run_dir": str | None, "ckpt_path": str | None}
IGNORED |= {"strict_learning": Any, "find_lr": Any, "find_lr_steps": Any}
IGNORED |= {"find_batch_size": Any, "find_batch_size_trials": Any, "threads": Any}


def data_parser(prog: str = "mlcycle", description: str = "") -> MLCycleParser:
    """``--config`` and the ``data`` section of ``train.py``; a tool adds its own options."""
    parser = MLCycleParser(
        prog=prog, description=description, allow_abbrev=False, exit_on_error=False
    )
    parser.add_argument("-c", "--config", action=ActionConfigFile, help="a training config (YAML); repeat to compose several")  # fmt: skip
    parser.add_lightning_class_args(LightningDataModule, "data", subclass_mode=True)
    parser.set_defaults({"data": {"class_path": DEFAULT_DATA}})
    for key, kind in IGNORED.items():
        parser.add_argument(f"--{key}", type=kind, default=None, help="read from the config and ignored here")  # fmt: skip
    return parser


def parse(parser: MLCycleParser, argv: Sequence[str] | None = None) -> Namespace:
    """The parsed arguments; a bad key or value raises :class:`UserError` (one line, exit 2)."""
    try:
        return parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except ArgumentError as exc:
        raise UserError(one_line_error(parser, str(exc))) from exc


def instantiate_data(parser: MLCycleParser, cfg: Namespace) -> LightningDataModule:
    """The data module of ``cfg`` (its arguments are checked; no image is read yet)."""
    try:
        return parser.instantiate(cfg).data
    except ArgumentError as exc:
        raise UserError(one_line_error(parser, str(exc))) from exc


def config_names(cfg: Namespace) -> list[str]:
    return [str(c) for c in (cfg.get("config") or [])]


def data_argv(overrides: Mapping[str, Any] | Sequence[str] | None) -> list[str]:
    """``{'root': 'x', 'image_size': 16}`` -> ``['--data.root=x', '--data.image_size=16']``;
    a list of such arguments is returned as it is."""
    if overrides is None:
        return []
    if not isinstance(overrides, Mapping):
        return [str(a) for a in overrides]
    return [
        f"--data.{key}={value if isinstance(value, str) else json.dumps(value)}"
        for key, value in overrides.items()
    ]


def build_data(
    configs: Sequence[str], overrides: Mapping[str, Any] | Sequence[str] | None = None
) -> LightningDataModule:
    """The data module of ``configs`` with ``overrides``, as ``train.py`` would build it."""
    parser = data_parser()
    argv = [a for c in configs for a in ("--config", str(c))] + data_argv(overrides)
    return instantiate_data(parser, parse(parser, argv))


def data_arguments(argv: Sequence[str]) -> list[str]:
    """The ``--data...`` arguments among ``argv`` (with their values), to record them."""
    out, take = [], False
    for arg in argv:
        if take:
            out.append(arg)
            take = False
        elif arg == "--data" or arg.startswith(("--data.", "--data=")):
            out.append(arg)
            take = "=" not in arg
    return out
