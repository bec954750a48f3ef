"""The run directory: the record every later step (evaluate, export, serve) reads."""

from __future__ import annotations

import json
import os
import platform
import re
import time
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from mlcycle.core.errors import UserError

LIBRARIES = (
    "mlcycle",
    "torch",
    "torchvision",
    "lightning",
    "torchmetrics",
    "albumentations",
    "numpy",
    "pillow",
)


def package_versions(names: tuple[str, ...]) -> dict[str, str]:
    """Python's version and each named package's (``not installed`` when it is not)."""
    versions = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def library_versions() -> dict[str, str]:
    return {**package_versions(LIBRARIES), "cuda": torch.version.cuda or "none"}


RUN_DIR_ENV = "MLCYCLE_RUN_DIR"  # shared with processes Lightning launches for DDP
JOB_ID_ENVS = ("SLURM_JOB_ID", "TORCHELASTIC_RUN_ID")  # the same in every rank of a job


def global_rank() -> int:
    for key in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if os.environ.get(key, "").isdigit():
            return int(os.environ[key])
    return 0


def default_run_dir(config_files: list[str], root: str = "runs", name: str | None = None) -> Path:
    """``runs/<name>/<timestamp>``, ``name`` by default the last config's; a suffix keeps two
    runs in one second apart.

    Every process of a distributed job must agree on it: processes Lightning launches inherit
    it through ``MLCYCLE_RUN_DIR``; ranks started by torchrun or SLURM name it after the job id.
    """
    if os.environ.get(RUN_DIR_ENV):
        return Path(os.environ[RUN_DIR_ENV])
    name = name or (Path(config_files[-1]).stem if config_files else "default")
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", name) or "default"
    job = next((os.environ[k] for k in JOB_ID_ENVS if os.environ.get(k, "none") != "none"), None)
    if job:
        return Path(root) / name / f"job-{re.sub(r'[^A-Za-z0-9_.-]+', '-', job)}"
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path(root) / name / stamp
    n = 1
    while path.exists():
        n += 1
        path = Path(root) / name / f"{stamp}-{n}"
    return path


def check_run_dir(run_dir: Path, resume: bool) -> Path:
    """Refuse to overwrite an earlier run unless resuming it; resuming needs ``last.ckpt``."""
    checkpoints = run_dir / "checkpoints"
    if global_rank() > 0:
        return run_dir  # rank 0 checks; the others may start after it created the folder
    if resume:
        if not (checkpoints / "last.ckpt").is_file():
            raise UserError(
                f"nothing to resume: '{checkpoints / 'last.ckpt'}' does not exist; "
                "pass --run_dir of the run to resume with --ckpt_path last"
            )
    elif checkpoints.is_dir() and any(checkpoints.iterdir()):
        raise UserError(
            f"run directory '{run_dir}' already holds a run; resume it with --ckpt_path last "
            "or choose another --run_dir"
        )
    return run_dir


def create_run_dir(run_dir: Path) -> None:
    try:
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"cannot create run directory '{run_dir}': {exc.strerror}; choose another --run_dir"
        ) from exc


def device_name(accelerator: str) -> str:
    if accelerator == "cuda" and torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}"
    return f"cpu: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads"


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    tmp.replace(path)


class Stopwatch:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return round(time.perf_counter() - self.start, 2)
