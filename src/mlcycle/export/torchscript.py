"""TorchScript by tracing: a ``.ts`` file that ``torch.jit.load`` runs without mlcycle."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from mlcycle.core.errors import UserError


def export_torchscript(
    model: nn.Module, example: torch.Tensor, path: Path, outputs: int = 1
) -> Path:
    """Trace ``model`` (in eval mode) on ``example`` and save it to ``path``; the model returns
    one tensor, or a tuple of ``outputs`` tensors when ``outputs`` > 1."""
    model = model.eval()
    with warnings.catch_warnings():
        # torch.jit is deprecated upstream but still the format mobile/C++ runtimes load.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", UserWarning)  # torchvision's detectors while tracing
        try:
            with torch.inference_mode(False), torch.no_grad():
                traced = torch.jit.trace(model, example, check_trace=False)
        except Exception as exc:  # tracing fails with many error types
            detail = " ".join(str(exc).split())[:300]
            raise UserError(f"TorchScript tracing of the model failed: {detail}") from exc
        got = traced(example)
        ok = (
            isinstance(got, torch.Tensor)
            if outputs == 1
            else isinstance(got, tuple)
            and len(got) == outputs
            and all(isinstance(t, torch.Tensor) for t in got)
        )
        if not ok:
            want = "one tensor" if outputs == 1 else f"a tuple of {outputs} tensors"
            raise UserError(f"the model does not return {want}; it cannot be exported")
        torch.jit.save(traced, str(path))
    return path
