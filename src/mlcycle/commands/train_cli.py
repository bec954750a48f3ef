"""The command line: LightningCLI with a run directory, data-to-model links and one-line errors."""

from __future__ import annotations

import difflib
import inspect
import json
import os
import re
import sys
from functools import reduce
from operator import or_
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from jsonargparse import Namespace
from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import TensorBoardLogger

from mlcycle.callbacks import FiniteLossGuard, FitDiagnosis, GradNorm, LossCurves
from mlcycle.errors import UserError, fail
from mlcycle.run.record import RUN_DIR_ENV, check_run_dir, create_run_dir, default_run_dir
from mlcycle.tasks.base import Task

DEFAULT_MODEL = "mlcycle.tasks.ClassificationTask"
DEFAULT_DATA = "mlcycle.data.ImageClassificationData"
# Trainer keys where an int means a number of batches (or epochs) and a float a fraction.
INTEGER_LIMITS = (
    "limit_train_batches",
    "limit_val_batches",
    "limit_test_batches",
    "limit_predict_batches",
    "overfit_batches",
    "val_check_interval",
    "check_val_every_n_epoch",
)
FINDER = bool | Literal["apply"]


def int_before_float(typehint: Any) -> Any:
    """``typehint`` with ``int`` tried before ``float`` when it is a union of both.

    Python's typing caches unions and treats ``Union[float, int]`` and ``Union[int, float]`` as
    equal, so ``Trainer.__init__``'s ``Optional[Union[int, float]]`` comes back as
    ``Union[float, int, None]`` once Lightning Fabric has spelled it that way. jsonargparse
    tries the subtypes in order, and ``float`` accepts ``1`` as ``1.0``: "one batch" became
    "all batches". ``|`` builds an uncached union that keeps the order given here.
    """
    args = get_args(typehint)
    if get_origin(typehint) is not Union and not isinstance(typehint, type(int | float)):
        return typehint
    if int not in args or float not in args:
        return typehint
    rest = [a for a in args if a not in (int, float)]
    return reduce(or_, [int, float, *rest])


def keep_integer_limits(parser: LightningArgumentParser) -> None:
    """Make the ``trainer`` keys in ``INTEGER_LIMITS`` keep an int as an int (CLI and YAML)."""
    for action in parser._actions:
        if action.dest.removeprefix("trainer.") in INTEGER_LIMITS and hasattr(action, "_typehint"):
            action._typehint = int_before_float(action._typehint)


def _class_keys(group: str, class_path: str) -> list[str]:
    """Valid ``group.<arg>`` keys of the class at ``class_path``."""
    import importlib

    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return []
    linked = Task.linked if group == "model" else ()
    keys = [
        f"{group}.{arg}"
        for c in cls.__mro__  # a task's own arguments, then those it passes on to Task's
        if "__init__" in vars(c)
        for arg, p in inspect.signature(c.__init__).parameters.items()
        if arg != "self" and arg not in linked and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    return list(dict.fromkeys(keys))


def _closest_key(parser: LightningArgumentParser, key: str, class_path: str | None) -> str | None:
    candidates = [a.dest for a in parser._actions if a.dest and a.dest != "help"]
    for group, default in (("model", DEFAULT_MODEL), ("data", DEFAULT_DATA)):
        chosen = class_path if class_path and key.startswith(group + ".") else default
        candidates += _class_keys(group, chosen)
    candidates = sorted({c.replace(".init_args.", ".") for c in candidates} - {key})
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    if not close:
        leaf = {c.rsplit(".", 1)[-1]: c for c in candidates}
        close = [
            leaf[m] for m in difflib.get_close_matches(key.rsplit(".", 1)[-1], list(leaf), n=1)
        ]
    return close[0] if close else None


def one_line_error(parser: LightningArgumentParser, message: str) -> str:
    """Condense a jsonargparse error to one line naming the key, with the closest valid key."""
    text = " ".join(message.split())
    group = re.match(r'Parser key "([\w.]+)"', text)
    prefix = f"{group.group(1)}." if group and group.group(1) in ("model", "data") else ""
    unknown = re.findall(r"Option '([\w.\-]+)' is not accepted", text)
    unknown += [
        m.split("=")[0] for m in re.findall(r"(?i)unrecognized arguments:\s*--?([\w.\-=]+)", text)
    ]
    unknown += re.findall(r'Key "([\w.\-]+)" is not expected', text)
    if unknown:
        key = prefix + unknown[0].replace(".init_args.", ".")
        chosen = re.search(r"given class_path '([\w.]+)'", text)
        close = _closest_key(parser, key, chosen.group(1) if chosen else None)
        hint = f"; did you mean '{close}'?" if close else ""
        return f"unknown config key '{key}'{hint} (--help lists every key)"
    nested = re.search(
        r"Problem with given class_path '[\w.]+': Parser key \"([\w.]+)\": "
        r"Does not validate against any of the Union subtypes Subtypes: \[(.*?)\] Errors:.*?Given value: (.*?) - ",
        text,
    )
    if nested and prefix:
        kinds = re.sub(r"<class '([\w.]+)'>", r"\1", nested.group(2)).replace("NoneType", "null")
        return f"config key '{prefix}{nested.group(1)}': expected one of [{kinds}], got '{nested.group(3)}'"
    union = re.match(
        r'Parser key "([\w.]+)": Does not validate against any of the Union subtypes Subtypes: \[(.*?)\]',
        text,
    )
    if union and not prefix:
        value = re.search(r"Given value: (.*)$", text)
        got = f", got '{value.group(1)}'" if value else ""
        kinds = re.sub(r"<class '([\w.]+)'>", r"\1", union.group(2)).replace("NoneType", "null")
        return f"config key '{union.group(1)}': expected one of [{kinds}]{got}"
    bad = re.search(
        r"Parser key \"([\w.]+)\": (.+?)(?: - Expected a <class 'NoneType'>|$)",
        text.split("Errors:")[-1],
    )
    if bad:
        key = (
            bad.group(1) if not prefix or bad.group(1).startswith(prefix) else prefix + bad.group(1)
        )
        detail = re.sub(r"<class '([\w.]+)'>", r"\1", bad.group(2)).rstrip(" -")
        return f"config key '{key}': {detail[:300]}"
    text = re.sub(r"<class '([\w.]+)'>", r"\1", text)
    return text if len(text) <= 400 else text[:400] + " ..."


def quote_plain_strings(args: list[str]) -> tuple[list[str], dict[str, str]]:
    """Command-line values that YAML would read as a mapping or list although they are not
    written as one (``SELECT ... WHERE b = 'x: y'``) are passed on quoted; returns the new
    arguments and ``{quoted: original}`` to undo the quoting where it survives parsing.

    jsonargparse reads a value as YAML; inside a ``class_path`` group that turns such a SQL query
    into a dict and fails. A value meant as a mapping or list is written ``{...}`` / ``[...]``.
    """
    out, quoted = [], {}
    for arg in args:
        key, sep, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
        if arg.startswith("--") and not sep:
            out.append(arg)
            continue
        try:
            loaded = yaml.safe_load(value)
        except yaml.YAMLError:
            loaded = None
        if isinstance(loaded, dict | list) and not value.lstrip().startswith(("{", "[")):
            quoted[json.dumps(value)] = value
            value = json.dumps(value)
        out.append(f"{key}{sep}{value}")
    return out, quoted


def _unquote(node: Any, quoted: dict[str, str]) -> Any:
    """``node`` with every string that is a key of ``quoted`` replaced by its original."""
    if isinstance(node, str):
        return quoted.get(node, node)
    if isinstance(node, Namespace):
        for key, value in vars(node).items():
            setattr(node, key, _unquote(value, quoted))
    elif isinstance(node, dict):
        return {k: _unquote(v, quoted) for k, v in node.items()}
    elif isinstance(node, list):
        return [_unquote(v, quoted) for v in node]
    return node


class MLCycleParser(LightningArgumentParser):
    """Errors as one ``error:`` line and exit code 2, without the usage text."""

    def parse_args(self, args: Any = None, *rest: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        args, quoted = quote_plain_strings(list(sys.argv[1:] if args is None else args))
        parsed = super().parse_args(args, *rest, **kwargs)
        return _unquote(parsed, quoted) if quoted else parsed

    def error(self, message: str, ex: Exception | None = None):  # type: ignore[override]
        if not self.exit_on_error:
            return super().error(message, ex)
        fail(one_line_error(self, message), 2)


class MLCycleCLI(LightningCLI):
    """``train.py``'s parser: ``--config`` files compose, dotted keys override, and

    * ``--run_dir DIR`` (default ``runs/<config name>/<timestamp>``) receives everything;
    * ``--ckpt_path last`` resumes the run in ``--run_dir``;
    * ``num_classes``, ``in_channels`` and ``class_names`` flow from the data to the model;
    * ``--strict_learning`` exits 1 when the best model is at or below chance;
    * ``--find_lr`` / ``--find_batch_size`` run Lightning's tuner first (``=apply`` then trains
      with its result, otherwise the run stops after reporting it).
    """

    def __init__(self, args: list[str] | None = None) -> None:
        self.run_dir: Path | None = None
        super().__init__(
            model_class=LightningModule,
            datamodule_class=LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_callback=None,
            auto_configure_optimizers=False,
            seed_everything_default=42,
            parser_class=MLCycleParser,
            parser_kwargs={
                "description": "Train a model; every key can be set in YAML or as --a.b=value.",
                "allow_abbrev": False,
            },
            args=args,
            run=False,
        )

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--run_dir",
            type=str | None,
            default=None,
            help="Run directory (default: runs/<config>/<time>).",
        )
        parser.add_argument(
            "--ckpt_path",
            type=str | None,
            default=None,
            help="'last' resumes the run in --run_dir; or a .ckpt path.",
        )
        parser.add_argument(
            "--strict_learning",
            type=bool,
            nargs="?",
            const=True,
            default=False,
            help="Exit 1 (after writing metrics.json) when the best model is at or below chance.",
        )
        parser.add_argument(
            "--find_lr",
            type=FINDER,
            nargs="?",
            const=True,
            default=False,
            help="Run the learning-rate finder: write lr_finder.png/.json and stop; "
            "'apply' trains with its suggestion.",
        )
        parser.add_argument(
            "--find_lr_steps",
            type=int,
            default=100,
            help="Learning rates the finder tries (one training step each).",
        )
        parser.add_argument(
            "--find_batch_size",
            type=FINDER,
            nargs="?",
            const=True,
            default=False,
            help="Run the batch-size finder (powers of 2 until out of memory): write "
            "batch_size_finder.json and stop; 'apply' trains with its result.",
        )
        parser.add_argument(
            "--find_batch_size_trials",
            type=int | None,
            default=None,
            help="Batch sizes the finder tries at most (default: 25 on CUDA, 6 elsewhere).",
        )
        parser.set_defaults(
            {"model": {"class_path": DEFAULT_MODEL}, "data": {"class_path": DEFAULT_DATA}}
        )
        keep_integer_limits(parser)
        for key in Task.linked:
            parser.link_arguments(f"data.{key}", f"model.init_args.{key}", apply_on="instantiate")

    def before_instantiate_classes(self) -> None:
        config = self.config
        configs = [str(c) for c in (config.get("config") or [])]
        run_dir = Path(config.run_dir) if config.run_dir else default_run_dir(configs)
        if config.ckpt_path and config.ckpt_path != "last" and not Path(config.ckpt_path).is_file():
            raise UserError(
                f"--ckpt_path '{config.ckpt_path}' does not exist; use 'last' or a .ckpt file"
            )
        if config.ckpt_path and (config.find_lr or config.find_batch_size):
            raise UserError(
                "--find_lr and --find_batch_size start a new run; they cannot resume one (--ckpt_path)"
            )
        self.run_dir = check_run_dir(run_dir, resume=config.ckpt_path == "last")
        os.environ[RUN_DIR_ENV] = str(self.run_dir)
        config.run_dir = str(self.run_dir)
        precision = str(config.trainer.get("precision") or "32")
        accelerator = str(config.trainer.get("accelerator") or "auto")
        if precision.startswith("16") and not _cuda_selected(accelerator):
            raise UserError(
                f"--trainer.precision={precision} needs a CUDA GPU; on the CPU use bf16-mixed or 32"
            )

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        assert self.run_dir is not None
        create_run_dir(self.run_dir)  # only now: a config or data error leaves no empty folder
        monitor, mode = self.model.monitor
        kwargs["default_root_dir"] = str(self.run_dir)
        kwargs["logger"] = TensorBoardLogger(
            save_dir=str(self.run_dir), name="tensorboard", version="", default_hp_metric=False
        )
        extra = [
            self._get(self.config_init, c) for c in self._parser(self.subcommand).callback_keys
        ]
        trainer_config = {**self._get(self.config_init, "trainer", default={}), **kwargs}
        return self._instantiate_trainer(
            trainer_config, extra + standard_callbacks(self.run_dir, monitor, mode)
        )


def _cuda_selected(accelerator: str) -> bool:
    import torch

    return accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()


def standard_callbacks(run_dir: Path, monitor: str, mode: str) -> list[Callback]:
    """What every run records: best and last checkpoints, curves, diagnosis, a loss guard."""
    best = ModelCheckpoint(
        dirpath=run_dir / "checkpoints",
        filename="best",
        monitor=monitor,
        mode=mode,
        save_top_k=1,
        auto_insert_metric_name=False,
        enable_version_counter=False,
    )
    # Lightning 2.6's save_last only writes when a top-k checkpoint was written that epoch;
    # a resume must find the latest epoch, so last.ckpt has its own unmonitored checkpoint.
    last = ModelCheckpoint(
        dirpath=run_dir / "checkpoints", filename="last", save_top_k=1, enable_version_counter=False
    )
    return [
        best,
        last,
        LearningRateMonitor(logging_interval="epoch"),
        GradNorm(),
        LossCurves(),
        FitDiagnosis(),
        FiniteLossGuard(),
    ]
