"""The command line: LightningCLI with a run directory, data-to-model links and one-line errors."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Literal

from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.callbacks import Callback, LearningRateMonitor
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import TensorBoardLogger

from mlcycle.callbacks import FiniteLossGuard, FitDiagnosis, GradNorm, LossCurves
from mlcycle.callbacks.checkpoints import BestCheckpoint, LastCheckpoint
from mlcycle.callbacks.idle_hooks import QuietProfiler, SkipIdleHooks
from mlcycle.callbacks.progress import progress_bars
from mlcycle.core.device import (
    cuda_selected,
    enable_cuda_speedups,
    resolve_precision,
    use_cuda_speedups,
)
from mlcycle.core.errors import UserError
from mlcycle.core.objective import Objective, parse_objective
from mlcycle.core.record import (
    RUN_DIR_ENV,
    check_run_dir,
    create_run_dir,
    default_run_dir,
    global_rank,
)
from mlcycle.core.threads import (
    AUTO,
    CpuSample,
    apply_threads,
    choose_threads,
    cpu_sample,
)
from mlcycle.tasks.base import TASKS, Task
from mlcycle.training.loggers import check_installed
from mlcycle.training.parser import (
    DEFAULT_DATA,
    DEFAULT_MODEL,
    FINDER,
    MLCycleParser,
    accept_auto_precision,
    keep_integer_limits,
    remember_key_schema,
)


class MLCycleCLI(LightningCLI):
    """``train.py``'s parser: ``--config`` files compose, dotted keys override, and

    * ``--run_dir DIR`` (default ``runs/<name>/<timestamp>``: the data module's ``run_name``,
      else the config's name) receives everything;
    * ``--ckpt_path last`` resumes the run in ``--run_dir``;
    * ``num_classes``, ``in_channels`` and ``class_names`` flow from the data to the model;
    * ``--strict_learning`` exits 1 when the best model is at or below chance;
    * ``--find_lr`` / ``--find_batch_size`` run Lightning's tuner first (``=apply`` then trains
      with its result, otherwise the run stops after reporting it);
    * ``--threads auto`` trains on the CPU with the cores other work leaves free
      (:mod:`mlcycle.core.threads`; the other work is measured while the arguments are parsed).
    """

    def __init__(
        self, args: list[str] | None = None, callbacks: list[Callback] | None = None
    ) -> None:
        self.run_dir: Path | None = None
        self.added_callbacks = list(callbacks or [])
        self.cpu_start: CpuSample = cpu_sample()  # other work is measured from here
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
            help="Run directory (default: runs/<data file or config>/<time>).",
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
        add_finder_arguments(parser)
        parser.add_argument(
            "--objective",
            type=Objective | None,
            default=None,
            help="The business gate, e.g. {metric: val/f1, min: 0.95, per_class_min: 0.8, "
            "max_latency_ms: 20, max_size_mb: 10}; checked at the end of the run.",
        )
        parser.add_argument(
            "--threads",
            type=int | Literal["auto"],
            default=AUTO,
            help="Intra-op threads per training process; 'auto': on the CPU, the cores other "
            "work leaves free (config.yaml records the number).",
        )
        parser.set_defaults(
            {"model": {"class_path": DEFAULT_MODEL}, "data": {"class_path": DEFAULT_DATA}}
        )
        keep_integer_limits(parser)
        accept_auto_precision(parser)
        for key in linked_arguments():
            parser.link_arguments(f"data.{key}", f"model.init_args.{key}", apply_on="instantiate")

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        data_class = given_class(args if isinstance(args, list) else sys.argv[1:], "data")
        if data_class:  # its own defaults, not the built-in digits' carried over (source)
            parser.set_defaults({"data": {"class_path": data_class}})
        try:
            super().parse_arguments(parser, args)
        finally:  # a run, --help or an error: the next train.py answers a bad key before Lightning
            if args is None or isinstance(args, list):
                remember_key_schema(parser, parser.named)
        threads = self.config.get("threads", AUTO)
        if threads != AUTO and int(threads) < 1:  # before Lightning seeds and says so
            raise UserError(f"--threads {threads}: give a count of at least 1, or auto")

    def before_instantiate_classes(self) -> None:
        config = self.config
        if config.ckpt_path and config.ckpt_path != "last" and not Path(config.ckpt_path).is_file():
            raise UserError(
                f"--ckpt_path '{config.ckpt_path}' does not exist; use 'last' or a .ckpt file"
            )
        if config.ckpt_path and (config.find_lr or config.find_batch_size):
            raise UserError(
                "--find_lr and --find_batch_size start a new run; they cannot resume one (--ckpt_path)"
            )
        parse_objective(config.get("objective"))  # its values checked before the data is read
        check_installed(config.trainer.get("logger"))  # WandbLogger without wandb: one line
        use_weights_preprocessing(config)  # before the data module reads an image
        if config.run_dir or os.environ.get(RUN_DIR_ENV):
            self._use_run_dir(None)  # else named once the data module can be asked (run_name)
        accelerator = str(config.trainer.get("accelerator") or "auto")
        given = config.trainer.get("precision")
        if str(given) == "auto":  # resolved here, so config.yaml records what ran
            import torch

            cuda = torch.cuda.is_available()
            config.trainer.precision = resolve_precision(
                given, accelerator, cuda, cuda and torch.cuda.is_bf16_supported()
            )
        precision = str(config.trainer.get("precision") or "32")
        if precision.startswith("16") and not _cuda_selected(accelerator):
            raise UserError(
                f"--trainer.precision={precision} needs a CUDA GPU; on the CPU use bf16-mixed or 32"
            )
        if config.trainer.get("sync_batchnorm") and not _cuda_selected(accelerator):
            raise UserError(
                "--trainer.sync_batchnorm=true needs CUDA GPUs (PyTorch's SyncBatchNorm); on the "
                "CPU pass --trainer.sync_batchnorm=false"
            )
        use_threads(config, self.cpu_start)

    def _use_run_dir(self, name: str | None) -> None:
        """``--run_dir``, or ``runs/<name>/<time>`` (``name``: the data's, else the config's)."""
        config = self.config
        configs = [str(c) for c in (config.get("config") or [])]
        run_dir = Path(config.run_dir) if config.run_dir else default_run_dir(configs, name=name)
        self.run_dir = check_run_dir(run_dir, resume=config.ckpt_path == "last")
        os.environ[RUN_DIR_ENV] = str(self.run_dir)
        config.run_dir = str(self.run_dir)

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        if self.run_dir is None:
            # run_name: the data module's optional hook (data/base.py), e.g. a CSV file's stem
            self._use_run_dir(getattr(self.datamodule, "run_name", None))
        assert self.run_dir is not None
        create_run_dir(self.run_dir)  # only now: a config or data error leaves no empty folder
        monitor, mode = self.model.monitor
        kwargs["default_root_dir"] = str(self.run_dir)
        given = self._get(self.config_init, "trainer", default={}).get("logger")
        kwargs["logger"] = run_loggers(given, self.run_dir)
        extra = [
            self._get(self.config_init, c) for c in self._parser(self.subcommand).callback_keys
        ]
        trainer_config = {**self._get(self.config_init, "trainer", default={}), **kwargs}
        if trainer_config.get("profiler") is None:  # none asked for: none costs less
            trainer_config["profiler"] = QuietProfiler()
        if _cuda_speedups(trainer_config):
            enable_cuda_speedups()  # before the Trainer: trainer.benchmark still overrides cuDNN's
        standard = standard_callbacks(
            self.run_dir, monitor, mode, log_lr=kwargs["logger"] is not False
        )
        given = list(trainer_config.get("callbacks") or []) + extra + self.added_callbacks
        if any(isinstance(c, GradNorm) for c in given):  # the run's own (every=1, say)
            standard = [c for c in standard if not isinstance(c, GradNorm)]
        return self._instantiate_trainer(
            trainer_config,
            extra
            + standard
            + progress_bars(trainer_config, extra + self.added_callbacks)
            + self.added_callbacks,
        )


def use_threads(config: Any, start: CpuSample) -> None:
    """``--threads``: a count applies as given; ``auto`` on the CPU becomes the free cores
    (divided among DDP processes). config.yaml records the number; the choice is the run's
    first line. ``data.num_workers: auto`` stays as it is: a loader worker is a process that
    takes its turn on a busy core (and computes on one thread), not a team of threads that
    wait for each other at every operation, and its decoding would otherwise fall on the
    training process."""
    given = config.get("threads", AUTO)
    accelerator = str(config.trainer.get("accelerator") or "auto")
    on_cpu = not _cuda_selected(accelerator)
    if given == AUTO and not on_cpu:
        return  # on a GPU the training process mostly waits for it: PyTorch's default
    processes = cpu_processes(config.trainer.get("devices")) if on_cpu else 1
    choice = choose_threads(given, processes, start)
    apply_threads(choice)
    config.threads = choice.threads
    if global_rank() == 0:
        print(choice.line(), flush=True)


def cpu_processes(devices: Any) -> int:
    """Training processes on the CPU: ``trainer.devices`` as a count (``auto``: one)."""
    if isinstance(devices, list | tuple):
        return max(1, len(devices))
    text = str(devices)
    return int(text) if text.isdigit() and int(text) > 0 else 1


def use_weights_preprocessing(config: Any) -> None:
    """The task's pretrained weights' input (mean, std, size) as the data's ``preprocessing``,
    when the data module takes one and the config left it unset; config.yaml records it."""
    from mlcycle.core.imports import import_object

    data_args = config.data.get("init_args")
    if data_args is None or "preprocessing" not in data_args or data_args.preprocessing:
        return
    task = import_object(config.model.class_path, "model.class_path")
    find = getattr(task, "weights_preprocessing", None)
    if find is not None:
        init_args = config.model.get("init_args")
        data_args.preprocessing = find(init_args.as_dict() if init_args is not None else {})


def run_loggers(given: Any, run_dir: Path) -> Any:
    """The run's loggers: TensorBoard in ``RUN/tensorboard`` by default (``trainer.logger``
    unset or true); none for false; else the loggers the config names, kept as they are."""
    if given is None or given is True:
        return TensorBoardLogger(
            save_dir=str(run_dir), name="tensorboard", version="", default_hp_metric=False
        )
    return given


def given_class(argv: list[str], group: str) -> str | None:
    """The class path the command line gives ``group`` (``--data=pkg.Class``,
    ``--data.class_path pkg.Class``), if any."""
    for i, arg in enumerate(argv):
        name, eq, value = arg.partition("=")
        if name in (f"--{group}", f"--{group}.class_path"):
            value = value if eq else (argv[i + 1] if i + 1 < len(argv) else "")
            is_file = "/" in value or value.endswith((".yaml", ".yml", ".json"))
            if "." in value and not value.lstrip().startswith(("{", "[")) and not is_file:
                return value
    return None


def add_finder_arguments(parser: LightningArgumentParser) -> None:
    """``--find_lr`` and ``--find_batch_size`` with their limits."""
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


def linked_arguments() -> list[str]:
    """``Task.linked``, then what the registered tasks add (a table task's feature counts).
    jsonargparse skips a link whose attribute the data module lacks or whose argument the
    chosen task lacks, so each task gets just the links it declares."""
    names = list(Task.linked)
    for name in TASKS.names():
        names += [key for key in TASKS.get(name).linked if key not in names]
    return names


def _cuda_selected(accelerator: str) -> bool:
    import torch

    return cuda_selected(accelerator, torch.cuda.is_available())


def _cuda_speedups(trainer_config: dict[str, Any]) -> bool:
    import torch

    return use_cuda_speedups(
        trainer_config.get("accelerator"),
        torch.cuda.is_available(),
        trainer_config.get("deterministic"),
    )


def standard_callbacks(
    run_dir: Path, monitor: str, mode: str, log_lr: bool = True
) -> list[Callback]:
    """What every run records: best and last checkpoints, curves, diagnosis, a loss guard, and
    (``log_lr``: there is a logger to record it) the learning rate per epoch; and the skip of
    every callback's per-batch hooks that do nothing (callbacks/idle_hooks.py)."""
    best = BestCheckpoint(
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
    # When best.ckpt was just written, last.ckpt becomes a hard link to it (callbacks/checkpoints).
    last = LastCheckpoint(
        best,
        dirpath=run_dir / "checkpoints",
        filename="last",
        save_top_k=1,
        enable_version_counter=False,
    )
    lr = [LearningRateMonitor(logging_interval="epoch")] if log_lr else []
    return [
        best,
        last,
        *lr,
        GradNorm(),
        LossCurves(),
        FitDiagnosis(),
        FiniteLossGuard(),
        SkipIdleHooks(),
    ]
