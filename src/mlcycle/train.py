"""``scripts/train.py``: parse, build the run directory, fit, and write ``metrics.json``."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

from mlcycle.errors import main_guard
from mlcycle.run_record import (
    RUN_DIR_ENV,
    Stopwatch,
    device_name,
    global_rank,
    library_versions,
    write_json,
)


class _NoAdverts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Tip: For seamless cloud" not in record.getMessage()


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
    ):
        warnings.filterwarnings("ignore", message=pattern)


def best_row(history: list[dict[str, float]], monitor: str, mode: str) -> dict[str, float]:
    rows = [r for r in history if monitor in r]
    if not rows:
        return {}
    return (max if mode == "max" else min)(rows, key=lambda r: r[monitor])


def summary(cli: Any, status: str, clock: Stopwatch, error: str | None = None) -> dict[str, Any]:
    from mlcycle.callbacks import FitDiagnosis, LossCurves

    trainer = cli.trainer
    monitor, mode = getattr(cli.model, "monitor", ("val/loss", "min"))
    curves = next((c for c in trainer.callbacks if isinstance(c, LossCurves)), None)
    diagnosis = next((c for c in trainer.callbacks if isinstance(c, FitDiagnosis)), None)
    history = curves.history if curves else []
    best = best_row(history, monitor, mode)
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
        "diagnosis": diagnosis.flags if diagnosis else [],
        "versions": library_versions(),
    }
    if error:
        record["error"] = error
    return record


@main_guard
def main(args: list[str] | None = None) -> Path:
    _quiet()
    from mlcycle.cli import MLCycleCLI

    clock = Stopwatch()
    inherited = os.environ.get(RUN_DIR_ENV)
    try:
        return _train(MLCycleCLI(args), clock)
    finally:
        # The run dir is shared with DDP processes through the environment; don't leak it into
        # the next run of this process.
        if inherited is None:
            os.environ.pop(RUN_DIR_ENV, None)


def _train(cli: Any, clock: Stopwatch) -> Path:
    run_dir: Path = cli.run_dir
    lead = global_rank() == 0  # only one process of a distributed run writes the record
    if cli.config.ckpt_path:
        cli.datamodule.check_unchanged_since(run_dir)
    if lead:
        cli.datamodule.write_records(run_dir)
        (run_dir / "config.yaml").write_text(cli.parser.dump(cli.config, skip_unset=False))
        skipped = len(getattr(getattr(cli.datamodule, "index", None), "skipped", []))
        if skipped:
            print(f"skipped {skipped} unreadable file(s); see {run_dir / 'skipped_files.csv'}")
    status, error = "finished", None
    try:
        cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=cli.config.ckpt_path)
    except Exception as exc:
        status, error = "failed", " ".join(str(exc).split())
        raise
    finally:
        if cli.trainer.state.status.value == "interrupted":
            status = "interrupted"
        if lead:
            write_json(run_dir / "metrics.json", summary(cli, status, clock, error))
    if lead:
        record = summary(cli, status, clock)
        monitor = record["monitor"]
        print(
            f"best {monitor} {record.get(monitor, float('nan')):.4f} at epoch {record['best_epoch']} "
            f"({record['epochs']} epochs, {record['wall_time_s']:.1f}s); tensorboard --logdir {run_dir}"
        )
        print(f"run directory: {run_dir}")
    return run_dir
