"""ONNX export with a dynamic batch axis, checked with ``onnx.checker``.

The default exporter is torch's TorchScript-based one (``dynamo=False``): under torch 2.14 it
writes the requested opset directly, while the dynamo exporter only produces opset 18 and above
(it fails to down-convert to 17) and is several times slower on small models.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx
import torch
from torch import nn

from mlcycle.core.errors import UserError

DEFAULT_OPSET = 17
INPUT_NAME, OUTPUT_NAME = "input", "logits"
EXPORTERS = ("torchscript", "dynamo")


@dataclass
class OnnxIO:
    """The graph's output names and dynamic axes; the one input is always ``input``."""

    outputs: tuple[str, ...] = (OUTPUT_NAME,)
    dynamic_axes: dict[str, dict[int, str]] = field(
        default_factory=lambda: {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}
    )

    @property
    def dynamic_batch(self) -> bool:
        return 0 in self.dynamic_axes.get(INPUT_NAME, {})


def opset_range(exporter: str) -> tuple[int, int]:
    """The opsets ``exporter`` can write."""
    from torch.onnx import _constants

    if exporter == "dynamo":
        return 18, int(_constants.ONNX_MAX_OPSET)
    top = getattr(_constants, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", _constants.ONNX_MAX_OPSET)
    return int(_constants.ONNX_MIN_OPSET), int(top)


@contextlib.contextmanager
def _quiet_fds() -> Iterator[None]:
    """Silence C++-level output (torch prints the whole IR graph on an export error)."""
    saved: list[tuple[int, int]] = []
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):
            stream.flush()
    with tempfile.TemporaryFile() as sink:
        try:
            for fd in (1, 2):
                saved.append((fd, os.dup(fd)))
                os.dup2(sink.fileno(), fd)
            yield
        finally:
            for stream in (sys.stdout, sys.stderr):  # what Python buffered goes to the sink too
                with contextlib.suppress(AttributeError, OSError, ValueError):
                    stream.flush()
            for fd, copy in saved:
                os.dup2(copy, fd)
                os.close(copy)


def _unsupported_op(exc: Exception) -> tuple[str, int | None] | None:
    """(operator, first opset that has it) when ``exc`` is the exporter's unsupported-op error."""
    text = " ".join(str(exc).split())
    match = re.search(r"operator '([^']+)'", text)
    if not match:
        return None
    added = re.search(r"added in version (\d+)", text)
    return match.group(1), int(added.group(1)) if added else None


def _run_export(model: nn.Module, example: torch.Tensor, path: Any, kwargs: dict) -> None:
    with warnings.catch_warnings(), _quiet_fds(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notices
        torch.onnx.export(model, (example,), path, **kwargs)


def _opset_hint(
    model: nn.Module, example: torch.Tensor, kwargs: dict, op: str, opset: int, needed: int | None
) -> UserError:
    """Name the operator and an opset that exports the model, trying the one torch suggests."""
    high = opset_range("dynamo" if kwargs.get("dynamo") else "torchscript")[1]
    if needed is None or needed > high:
        return UserError(
            f"operator '{op}' has no ONNX equivalent in opset {opset} nor in any opset up to "
            f"{high}; replace it in the model or export --format torchscript only"
        )
    try:
        _run_export(model, example, io.BytesIO(), {**kwargs, "opset_version": needed})
    except Exception as exc:  # the next operator in the way, if any
        nxt = _unsupported_op(exc)
        more = f"; at opset {needed} '{nxt[0]}' fails too" if nxt else ""
        return UserError(
            f"operator '{op}' cannot be expressed in ONNX opset {opset}; it needs opset "
            f"{needed} or later{more}"
        )
    return UserError(
        f"operator '{op}' cannot be expressed in ONNX opset {opset}; "
        f"export with --opset {needed} (the first opset that has it)"
    )


def export_onnx(
    model: nn.Module,
    example: torch.Tensor,
    path: Path,
    opset: int = DEFAULT_OPSET,
    exporter: str = "torchscript",
    io: OnnxIO | None = None,
) -> Path:
    """Export ``model`` to ``path`` with input ``input`` [batch, C, H, W] and, by default, one
    output ``logits`` with a dynamic batch axis; ``io`` names other outputs and axes."""
    io = io or OnnxIO()
    low, high = opset_range(exporter)
    if not low <= opset <= high:
        raise UserError(
            f"--opset {opset} is not supported by the {exporter} exporter; use {low}..{high}"
        )
    model = model.eval()
    kwargs: dict = {
        "input_names": [INPUT_NAME],
        "output_names": list(io.outputs),
        "opset_version": opset,
    }
    if exporter == "dynamo":
        batch = torch.export.Dim("batch", min=1, max=1 << 16)
        shapes = ({0: batch},) if io.dynamic_batch else None
        kwargs.update(dynamo=True, dynamic_shapes=shapes, external_data=False)
    else:
        kwargs.update(dynamo=False, dynamic_axes=io.dynamic_axes)
    try:
        _run_export(model, example, str(path), kwargs)
    except Exception as exc:  # torch raises many types; the operator case is the one users hit
        path.unlink(missing_ok=True)
        unsupported = _unsupported_op(exc)
        if unsupported is not None:
            raise _opset_hint(
                model, example, kwargs, unsupported[0], opset, unsupported[1]
            ) from exc
        detail = " ".join(str(exc).split())[:300]
        raise UserError(f"ONNX export (opset {opset}) failed: {detail}") from exc
    check_onnx(path, opset, io.dynamic_batch)
    return path


def check_onnx(path: Path, opset: int | None = None, dynamic_batch: bool = True) -> onnx.ModelProto:
    """``onnx.checker`` with shape inference, plus the contract: one input, and a dynamic batch
    axis unless ``dynamic_batch`` is false (detectors take one image at a time)."""
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise UserError(f"'{path}' fails onnx.checker: {' '.join(str(exc).split())[:300]}") from exc
    proto = onnx.load(str(path), load_external_data=False)
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    if dynamic_batch and (not dims or not dims[0].dim_param):
        raise UserError(f"'{path}' has a fixed batch size; expected a dynamic batch axis")
    written = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset is not None and written != opset:
        warnings.warn(
            f"{path.name}: asked for opset {opset}, the exporter wrote {written}", stacklevel=2
        )
    return proto
