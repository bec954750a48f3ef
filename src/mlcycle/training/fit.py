"""``scripts/train.py``: parse, build the run directory, fit, and write ``metrics.json``."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcycle.core.errors import fail
from mlcycle.core.objective import Objective, for_monitor, gate_record, parse_objective

# mlcycle.core.record imports torch (a second): imported where used, so that --help and config
# errors answered from the start-up cache (mlcycle.training.precheck) do not wait for it.
if TYPE_CHECKING:
    from mlcycle.core.record import Stopwatch


class _NoAdverts(logging.Filter):
    # Lightning's advertisement, and what its tuner says about its own temporary checkpoint
    # and about the task's callbacks being attached a second time after a finder ran.
    NOISE = (
        "Tip: For seamless cloud",
        ".lr_find_",
        ".scale_batch_size_",
        "will override existing callbacks passed to Trainer",
    )

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(n in message for n in self.NOISE)


def _quiet() -> None:
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).addFilter(_NoAdverts())
    # Lightning's advice on workers and logging intervals is noise on tiny data sets.
    for pattern in (
        ".*does not have many workers.*",
        ".*number of training batches.*",
        ".*LeafSpec.*",
        ".*deprecated in v4.49.0.*",  # jsonargparse deprecations inside Lightning itself
        "Checkpoint directory .* exists and is not empty",  # resuming: we checked the folder ourselves
        "LightningCLI's args parameter",  # compare.py and tune.py call train.py in-process
    ):
        warnings.filterwarnings("ignore", message=pattern)


def best_row(history: list[dict[str, float]], monitor: str, mode: str) -> dict[str, float]:
    rows = [r for r in history if monitor in r]
    if not rows:
        return {}
    return (max if mode == "max" else min)(rows, key=lambda r: r[monitor])


def summary(
    cli: Any,
    status: str,
    clock: Stopwatch,
    error: str | None = None,
    tuned: dict[str, Any] | None = None,
) -> dict[str, Any]:
    from mlcycle.callbacks import FitDiagnosis, LossCurves
    from mlcycle.core.record import device_name, library_versions

    trainer = cli.trainer
    monitor, mode = cli.model.monitor
    curves = next((c for c in trainer.callbacks if isinstance(c, LossCurves)), None)
    diagnosis = next((c for c in trainer.callbacks if isinstance(c, FitDiagnosis)), None)
    history = curves.history if curves else []
    best = best_row(history, monitor, mode)
    if diagnosis is not None and not diagnosis.final and diagnosis.rows:
        diagnosis.conclude()  # a failed or interrupted fit never reached on_fit_end
    findings = diagnosis.findings if diagnosis else []
    record: dict[str, Any] = {
        "status": status,
        "monitor": monitor,
        "best_epoch": best.get("epoch"),
        **{k: round(v, 6) for k, v in best.items() if k.startswith(("val/", "train/"))},
        "epochs": len(history),
        "wall_time_s": clock.seconds,  # this invocation (a resumed run counts its own part)
        "device": device_name(
            trainer.accelerator.__class__.__name__.replace("Accelerator", "").lower()
        ),
        "precision": str(trainer.precision),
        "seed": cli.config.get("seed_everything"),
        "resumed_from": cli.config.get("ckpt_path"),
        "data_fingerprint": getattr(cli.datamodule, "fingerprint", None),
        "checkpoints": {"best": "checkpoints/best.ckpt", "last": "checkpoints/last.ckpt"},
        "diagnosis": findings,
        "learned": learned(findings),
        **(tuned or {}),
        "versions": library_versions(),
    }
    if error:
        record["error"] = error
    return record


def learned(findings: list[dict[str, Any]]) -> bool | None:
    """False: the best model is at or below chance; true: above it; None: no chance level known."""
    if any(f["kind"] == "at_chance" for f in findings):
        return False
    if any(f["kind"] == "learning" and "chance" in f["values"] for f in findings):
        return True
    return None


def fit(args: list[str] | None = None, callbacks: list[Any] | None = None) -> Any:
    """Train as ``train.py`` does and return the CLI object (its ``run_dir``, ``model`` and
    ``datamodule``, the index already built), for callers that go on with them (compare.py,
    tune.py). ``callbacks`` are added to the run's own (tune.py's pruning callback)."""
    _quiet()
    from mlcycle.core.record import RUN_DIR_ENV, Stopwatch
    from mlcycle.training.cli import MLCycleCLI

    clock = Stopwatch()
    inherited = os.environ.get(RUN_DIR_ENV)
    try:
        cli = MLCycleCLI(args, callbacks)
        _train(cli, clock)
        return cli
    finally:
        # The run dir is shared with DDP processes through the environment; don't leak it into
        # the next run of this process.
        if inherited is None:
            os.environ.pop(RUN_DIR_ENV, None)


def _tune(cli: Any, run_dir: Path) -> tuple[dict[str, Any], bool]:
    """``--find_batch_size`` then ``--find_lr`` (the learning rate depends on the batch size).

    Returns what they found, for metrics.json, and whether to train: only when every finder
    asked for was told to ``apply`` its result.
    """
    from mlcycle.callbacks.finders import find_batch_size, find_lr

    config, tuned = cli.config, {}
    if config.find_batch_size:
        apply = config.find_batch_size == "apply"
        found = find_batch_size(
            cli.trainer, cli.model, cli.datamodule, run_dir, config.find_batch_size_trials, apply
        )
        tuned["batch_size_finder"] = found
        print(
            f"batch-size finder: batch size {found['batch_size']} ran without running out of memory "
            f"(limited by {found['limited_by']}; configured {found['configured_batch_size']}); "
            f"{run_dir / 'batch_size_finder.json'}"
        )
        if apply:
            config.data.init_args.batch_size = found["batch_size"]
    if config.find_lr:
        apply = config.find_lr == "apply"
        found = find_lr(
            cli.trainer, cli.model, cli.datamodule, run_dir, config.find_lr_steps, apply
        )
        tuned["lr_finder"] = {k: v for k, v in found.items() if k != "curve"}
        print(
            f"learning-rate finder: suggested lr {found['suggestion']:.3g} (configured "
            f"{found['configured_lr']:.3g}; {found['steps']} steps over {found['range'][0]:g}..{found['range'][1]:g}); "
            f"{run_dir / 'lr_finder.png'}"
        )
        if apply:
            config.model.init_args.lr = found["suggestion"]
    wanted = [f for f in (config.find_batch_size, config.find_lr) if f]
    train = all(f == "apply" for f in wanted)
    if wanted and not train:
        hints = []
        if "batch_size_finder" in tuned:
            hints.append(f"--data.batch_size={tuned['batch_size_finder']['batch_size']}")
        if "lr_finder" in tuned:
            hints.append(f"--model.lr={tuned['lr_finder']['suggestion']:.3g}")
        print(f"not trained; train with {' '.join(hints)}, or pass =apply to the finder flags")
    # config.yaml reproduces the run: the values found, not the search.
    config.find_lr = config.find_batch_size = False
    return tuned, train


def _train(cli: Any, clock: Stopwatch) -> Path:
    from mlcycle.core.record import global_rank, write_json
    from mlcycle.training import loggers

    run_dir: Path = cli.run_dir
    lead = global_rank() == 0  # only one process of a distributed run writes the record
    if cli.config.ckpt_path:
        cli.datamodule.check_unchanged_since(run_dir)
    tuned, train = (
        _tune(cli, run_dir) if cli.config.find_lr or cli.config.find_batch_size else ({}, True)
    )
    objective = _objective(cli)
    if lead:
        cli.datamodule.write_records(run_dir)
        (run_dir / "config.yaml").write_text(cli.parser.dump(cli.config, skip_unset=False))
        skipped = len(getattr(getattr(cli.datamodule, "index", None), "skipped", []))
        if skipped:
            print(f"skipped {skipped} file(s); see {run_dir / 'skipped_files.csv'}")
    if not train:
        print(f"run directory: {run_dir}")
        return run_dir
    if lead:  # the config as params, and tracking.json, for the loggers that take them
        configs = [str(c) for c in (cli.config.get("config") or [])]
        loggers.opened(cli.trainer.loggers, run_dir, loggers.run_name(cli.datamodule, configs))
    status, error, record = "finished", None, {}
    try:
        cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=cli.config.ckpt_path)
    except Exception as exc:
        status, error = "failed", " ".join(str(exc).split())
        raise
    finally:
        if cli.trainer.state.status.value == "interrupted":
            status = "interrupted"
        if lead:
            record = summary(cli, status, clock, error, tuned)
            record.update(gate_record(objective, record))
            write_json(run_dir / "metrics.json", record)
            loggers.closed(cli.trainer.loggers, run_dir, record)
    if lead:
        report_run(cli, record, run_dir)
    return run_dir


def report_run(cli: Any, record: dict[str, Any], run_dir: Path) -> None:
    """The closing lines: the best score, where the loggers write, the diagnosis, the gate."""
    from mlcycle.callbacks.diagnosis import Finding

    monitor = record["monitor"]
    print(
        f"best {monitor} {record.get(monitor, float('nan')):.4f} at epoch {record['best_epoch']} "
        f"({record['epochs']} epochs, {record['wall_time_s']:.1f}s){_logged_to(cli.trainer)}"
    )
    for finding in record["diagnosis"]:
        # at_chance is report_learning's last line; printed here too it read twice
        if finding.get("scope") == "run" and finding["kind"] != "at_chance":
            print(f"diagnosis: {Finding(**finding).line()}")
    report_gate(record)
    print(f"run directory: {run_dir}")
    report_learning(record["diagnosis"], strict=bool(cli.config.strict_learning))


def _objective(cli: Any) -> Objective | None:
    """The run's objective; its default metric becomes the task's monitor (in config.yaml too)."""
    objective = for_monitor(parse_objective(cli.config.get("objective")), cli.model.monitor.metric)
    if objective is not None:
        cli.config.objective.metric = objective.metric
    return objective


def report_gate(record: dict[str, Any]) -> None:
    """The objective's line; a failed gate on val does not change the exit code."""
    if "gate" not in record:
        return
    print(record["gate"]["line"])
    metric = record["objective"]["metric"]
    if record["objective"].get("min") is not None and metric not in record:
        logged = ", ".join(k for k in record if k.startswith("val/") and k.count("/") == 1)
        print(
            f"warning: objective.metric '{metric}' was not logged; logged: {logged}",
            file=sys.stderr,
        )


def report_learning(findings: list[dict[str, Any]], strict: bool) -> None:
    """The last line when the best model is at or below chance: a warning, or with
    ``--strict_learning`` an error and exit code 1 (metrics.json is already written)."""
    low = next((f for f in findings if f["kind"] == "at_chance"), None)
    if low is None:
        return
    others = [
        f["kind"]
        for f in findings
        if f.get("scope") == "run" and f["kind"] not in ("at_chance", "learning", "baseline")
    ]
    also = f" ({', '.join(others)})" if others else ""
    reason = f"the model did not learn: {low['message']}{also}; next: {low['next_step']}"
    sys.stdout.flush()
    if strict:
        fail(f"{reason} [--strict_learning]", 1)
    print(f"warning: {reason}", file=sys.stderr)


def _logged_to(trainer: Any) -> str:
    """Where the run's curves can be watched: TensorBoard's command, else each logger's folder."""
    from lightning.pytorch.loggers import TensorBoardLogger

    from mlcycle.training.loggers import part_of

    places = []
    for logger in trainer.loggers:
        part = part_of(logger)
        if isinstance(logger, TensorBoardLogger):
            places.append(f"tensorboard --logdir {logger.save_dir}")
        elif part is not None and part.where(logger):
            places.append(str(part.where(logger)))
        else:
            where = logger.log_dir or logger.save_dir
            places.append(f"{type(logger).__name__} in {where}" if where else type(logger).__name__)
    return "; " + ", ".join(places) if places else ""
