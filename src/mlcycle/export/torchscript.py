"""TorchScript by tracing: a ``.ts`` file that ``torch.jit.load`` runs without mlcycle."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from mlcycle.errors import UserError


def export_torchscript(model: nn.Module, example: torch.Tensor, path: Path) -> Path:
    """Trace ``model`` (in eval mode) on ``example`` and save it to ``path``."""
    model = model.eval()
    with warnings.catch_warnings():
        # torch.jit is deprecated upstream but still the format mobile/C++ runtimes load.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        try:
            with torch.inference_mode(False), torch.no_grad():
                traced = torch.jit.trace(model, example, check_trace=False)
        except Exception as exc:  # tracing fails with many error types
            detail = " ".join(str(exc).split())[:300]
            raise UserError(f"TorchScript tracing of the model failed: {detail}") from exc
        if not isinstance(traced(example), torch.Tensor):
            raise UserError("the model does not return one tensor of logits; it cannot be exported")
        torch.jit.save(traced, str(path))
    return path
