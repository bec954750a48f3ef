"""What every ensemble writes the same way: its run directory (refused when it already holds a
run), a checkpoint Lightning loads with ``weights_only=True``, and the config that rebuilds the
ensemble's task on its members' data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import yaml

from mlcycle.core.errors import UserError
from mlcycle.core.record import default_run_dir


def check_out(given: str | None) -> Path:
    """The output folder; refused when it already holds a run (created only once the ensemble
    is fit, so a failure leaves nothing behind)."""
    out = Path(given) if given else default_run_dir(["ensemble"])
    if (out / "checkpoints" / "best.ckpt").exists():
        raise UserError(f"'{out}' already holds a run; choose another --out")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out '{out}' is a file; choose a folder")
    return out


def create_out(out: Path) -> None:
    try:
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create '{out}': {exc.strerror}; choose another --out") from exc


def plain(value: Any) -> Any:
    """Only JSON types, so ``load_from_checkpoint(weights_only=True)`` reads the hyperparameters."""
    return json.loads(json.dumps(value))


def save_checkpoint(task: Any, path: Path) -> None:
    import lightning

    torch.save(
        {
            "state_dict": task.state_dict(),
            "hyper_parameters": plain(dict(task.hparams)),
            "pytorch-lightning_version": lightning.__version__,
            "epoch": 0,
            "global_step": 0,
        },
        path,
    )


def write_config(
    out: Path, task: Any, data: dict[str, Any], objective: Any, what: str = "an ensemble"
) -> None:
    """``config.yaml``: the ensemble's task with its hyperparameters, the members' ``data``
    on this folder's ``splits.csv``, and the objective."""
    data = plain(data)
    data.setdefault("init_args", {})["split_file"] = str(out / "splits.csv")
    task_class = f"{type(task).__module__}.{type(task).__name__}"
    config: dict[str, Any] = {
        "model": {"class_path": task_class, "init_args": plain(dict(task.hparams))},
        "data": data,
    }
    if objective is not None:
        config["objective"] = objective.to_dict()
    (out / "config.yaml").write_text(
        f"# {what} built by ensemble.py (see ensemble.json); not trained by train.py\n"
        + yaml.safe_dump(config, sort_keys=False)
    )
