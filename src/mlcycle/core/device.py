"""The GPU defaults, as pure rules with their small torch-touching appliers.

* ``trainer.precision: auto``: ``bf16-mixed`` on a CUDA GPU that supports bf16, ``16-mixed``
  (Lightning adds the grad scaler) on an older CUDA GPU, ``32`` on the CPU or with
  ``accelerator: cpu``. Every Lightning value passes through unchanged.
* On CUDA (and not ``trainer.deterministic``): ``cudnn.benchmark`` and TF32 matmul/convolutions.
  ``trainer.benchmark`` / ``trainer.deterministic`` still override the cuDNN flag (Lightning
  sets it when the Trainer is built).
* ``data.num_workers: auto``: ``min(8, cores - 1, max(1, batch_size // 16))``, 0 on one core.
"""

from __future__ import annotations

import os
from typing import Any

AUTO = "auto"
CUDA_ACCELERATORS = ("auto", "gpu", "cuda")


def cuda_selected(accelerator: Any, cuda_available: bool) -> bool:
    """Whether the run will train on CUDA: ``accelerator`` auto/gpu/cuda and a GPU present."""
    return str(accelerator or "auto") in CUDA_ACCELERATORS and cuda_available


def resolve_precision(
    precision: Any, accelerator: Any, cuda_available: bool, bf16_supported: bool
) -> str:
    """``precision`` as a Lightning value: ``auto`` resolved, anything else unchanged."""
    if str(precision) != AUTO:
        return str(precision)
    if not cuda_selected(accelerator, cuda_available):
        return "32"
    return "bf16-mixed" if bf16_supported else "16-mixed"


def use_cuda_speedups(accelerator: Any, cuda_available: bool, deterministic: Any = None) -> bool:
    """cuDNN benchmark and TF32 on: only when training on CUDA and not asked to be deterministic."""
    return cuda_selected(accelerator, cuda_available) and not deterministic


def enable_cuda_speedups() -> None:
    """``torch.backends.cudnn.benchmark`` and TF32 matmul / convolutions on."""
    import torch

    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.set_float32_matmul_precision("high")


def available_cores() -> int:
    """CPU cores this process may run on (its affinity where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def resolve_num_workers(num_workers: int | str, batch_size: int, cores: int) -> int:
    """``num_workers`` as a count: ``auto`` leaves one core to the training process, gives
    small batches one worker per 16 images and never more than 8; 0 on a one-core machine."""
    if num_workers != AUTO:
        return int(num_workers)
    if cores <= 1:
        return 0
    return min(8, cores - 1, max(1, batch_size // 16))
