"""The command line: LightningCLI with a run directory, data-to-model links and one-line errors."""

from __future__ import annotations

import difflib
import inspect
import os
import re
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import TensorBoardLogger

from mlcycle.callbacks import FiniteLossGuard, FitDiagnosis, LossCurves
from mlcycle.errors import UserError, fail
from mlcycle.run_record import RUN_DIR_ENV, check_run_dir, create_run_dir, default_run_dir

DEFAULT_MODEL = "mlcycle.tasks.ClassificationTask"
DEFAULT_DATA = "mlcycle.data.ImageClassificationData"
# What every task takes from its data module; never written in a config.
LINKED = ("num_classes", "in_channels", "class_names")


def _class_keys(group: str, class_path: str) -> list[str]:
    """Valid ``group.<arg>`` keys of the class at ``class_path``."""
    import importlib

    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return []
    return [
        f"{group}.{p}"
        for p in inspect.signature(cls.__init__).parameters
        if p not in ("self", *LINKED)
    ]


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


class MLCycleParser(LightningArgumentParser):
    """Errors as one ``error:`` line and exit code 2, without the usage text."""

    def error(self, message: str, ex: Exception | None = None):  # type: ignore[override]
        if not self.exit_on_error:
            return super().error(message, ex)
        fail(one_line_error(self, message), 2)


class MLCycleCLI(LightningCLI):
    """``train.py``'s parser: ``--config`` files compose, dotted keys override, and

    * ``--run_dir DIR`` (default ``runs/<config name>/<timestamp>``) receives everything;
    * ``--ckpt_path last`` resumes the run in ``--run_dir``;
    * ``num_classes``, ``in_channels`` and ``class_names`` flow from the data to the model.
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
        parser.set_defaults(
            {"model": {"class_path": DEFAULT_MODEL}, "data": {"class_path": DEFAULT_DATA}}
        )
        for key in LINKED:
            parser.link_arguments(f"data.{key}", f"model.init_args.{key}", apply_on="instantiate")

    def before_instantiate_classes(self) -> None:
        config = self.config
        configs = [str(c) for c in (config.get("config") or [])]
        run_dir = Path(config.run_dir) if config.run_dir else default_run_dir(configs)
        if config.ckpt_path and config.ckpt_path != "last" and not Path(config.ckpt_path).is_file():
            raise UserError(
                f"--ckpt_path '{config.ckpt_path}' does not exist; use 'last' or a .ckpt file"
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
        monitor, mode = getattr(self.model, "monitor", ("val/loss", "min"))
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
        LossCurves(),
        FitDiagnosis(),
        FiniteLossGuard(),
    ]
