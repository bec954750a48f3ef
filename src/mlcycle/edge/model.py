"""An exported model beside its ``model.json``: reading the description, loading the graph
(ONNX Runtime, or torch for a ``.ts`` file) and running it on images, one output list each."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

Model = Callable[[np.ndarray], list[np.ndarray]]


class UsageError(Exception):
    """A problem with the command line or the model files: exit code 2."""


def read_meta(model_path: Path) -> dict[str, Any]:
    """``model.json`` beside the model; a missing or foreign one is a :class:`UsageError`."""
    meta_path = model_path.parent / "model.json"
    if not meta_path.is_file():
        raise UsageError(f"'{meta_path}' is missing; keep model.json beside the model")
    meta = json.loads(meta_path.read_text())
    if meta.get("format_version") != 1 or "input" not in meta:
        raise UsageError(f"'{meta_path}' is not an mlcycle model.json (format_version 1)")
    return meta


def _onnx(path: Path, threads: int | None) -> Model:
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})


def _torchscript(path: Path) -> Model:
    import torch

    try:
        import torchvision  # noqa: F401  (registers the NMS operator detectors use)
    except ImportError:
        pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        module = torch.jit.load(str(path), map_location="cpu").eval()

    def run(x: np.ndarray) -> list[np.ndarray]:
        with torch.no_grad():
            out = module(torch.from_numpy(x))
        return [t.numpy() for t in (out if isinstance(out, tuple | list) else [out])]

    return run


def load_model(path: Path, threads: int | None = None) -> Model:
    """A function from a float32 NCHW batch to the model's outputs (logits first).

    ``threads``: ONNX Runtime's intra-op threads, which then sleep instead of spinning between
    calls (a server shares its cores with Python); None keeps ONNX Runtime's defaults."""
    if path.suffix == ".onnx":
        return _onnx(path, threads)
    if path.suffix in (".ts", ".pt"):
        return _torchscript(path)
    raise UsageError(f"model '{path}' is neither .onnx nor .ts; pass a file from RUN/export")


def is_batched(meta: dict[str, Any]) -> bool:
    """Whether the graph takes a batch of any size (its first input axis is a name, not 1)."""
    return not str(meta["input"].get("shape", ["batch"])[0]).isdigit()


def outputs_per_image(
    model: Model, inputs: list[np.ndarray], batched: bool, batch_axis: bool = True
) -> list[list[np.ndarray]]:
    """Each input's outputs: one call for all when the graph is ``batched``, else one call
    per image. ``batch_axis`` False: the graph's outputs have no batch axis (a detector's
    boxes), so each call's outputs belong to its one image as they are."""
    if not batch_axis:
        return [[np.asarray(o) for o in model(x[None])] for x in inputs]
    if not batched:
        return [[np.asarray(o)[0] for o in model(x[None])] for x in inputs]
    outs = [np.asarray(o) for o in model(np.stack(inputs))]
    return [[o[i] for o in outs] for i in range(len(inputs))]
