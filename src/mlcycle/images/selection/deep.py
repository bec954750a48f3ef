"""An image candidate's deep fold: a normal train.py run on the fold's ``splits.csv``, then
(a classifier) its out-of-fold probabilities and speed, its size, and (when a classic candidate
asks) embeddings: the input of its last Linear layer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from mlcycle.evaluators import predict_split
from mlcycle.run.loader import Run
from mlcycle.selection.measure import latency_ms, torch_predictor, torch_size
from mlcycle.selection.runs import fit_quietly


def run_fold(
    args: list[str],
    run_dir: Path,
    pool_rows: dict[str, int],
    callbacks: list[Any] | None = None,
    classify: bool = True,
) -> dict[str, Any]:
    """Train, then (a classifier) predict the fold, its val split, with the best checkpoint.

    Returns the fold's record: ``fit_s``, ``latency_ms``, ``params``, ``size_mb``, the best
    epoch's ``val_scores`` from metrics.json, the ``model`` and ``data``, and for a classifier
    the out-of-fold ``rows`` and ``probs``."""
    cli, fit_s = fit_quietly(args, run_dir, callbacks)
    data, model = cli.datamodule, Run(run_dir).load_model("best")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    record: dict[str, Any] = {
        "fit_s": round(fit_s, 2),
        "model": model,
        "data": data,
        "val_scores": {
            k.split("/", 1)[1]: v
            for k, v in metrics.items()
            if k.startswith("val/") and k.count("/") == 1 and isinstance(v, float)
        },
    }
    params, size = torch_size(model.model)
    record.update(params=params, size_mb=size, rows=None, probs=None, latency_ms=None)
    if classify:
        record["rows"], record["probs"] = predict_rows(model, data, "val", pool_rows)
        images = np.stack([data.raw_image(p) for p in data.index.positions["val"][:256]])
        mean, std = data.normalization
        record["latency_ms"] = latency_ms(torch_predictor(model, mean, std), images)
    return record


def predict_rows(
    model: Any, data: Any, split: str, pool_rows: dict[str, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Pool rows and softmax probabilities of every image of ``split``."""
    files = data.index.files
    rows, probs = [], []

    def consume(out: dict[str, torch.Tensor]) -> None:
        probs.append(out["probs"].numpy())
        rows.extend(pool_rows[files[int(i)][0][0]] for i in out["index"])

    predict_split(model, data, split, consume, progress=False)
    return np.array(rows), np.concatenate(probs).astype(np.float32)


def last_linear(model: nn.Module) -> nn.Linear:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no Linear layer to take embeddings before")
    return linears[-1]


def embed_rows(model: Any, data: Any, pool_rows: dict[str, int]) -> np.ndarray:
    """The input of the network's last Linear layer for every pool image, in pool order."""
    index = data.index
    positions = [p for p in range(len(index.samples)) if index.files[p][0][0] in pool_rows]
    dataset = data.dataset_type(index, positions, data.pipeline(False))
    captured: list[torch.Tensor] = []
    hook = last_linear(model.model).register_forward_hook(
        lambda _m, inputs, _o: captured.append(inputs[0].detach().flatten(1))
    )
    try:
        with torch.no_grad():
            for x, *_ in DataLoader(dataset, batch_size=128, shuffle=False):
                model(x.float())
    finally:
        hook.remove()
    features = torch.cat(captured).numpy()
    out = np.zeros((len(pool_rows), features.shape[1]), dtype=np.float32)
    out[[pool_rows[index.files[p][0][0]] for p in positions]] = features
    return out


def embedder(model: Any, mean: list[float], std: list[float]):
    """uint8 NHWC images -> embeddings (for the latency of classic models on embeddings)."""
    captured: list[torch.Tensor] = []
    layer = last_linear(model.model)
    predict = torch_predictor(model, mean, std)

    def embed(images: np.ndarray) -> np.ndarray:
        captured.clear()
        hook = layer.register_forward_hook(lambda _m, i, _o: captured.append(i[0].flatten(1)))
        try:
            predict(images)
        finally:
            hook.remove()
        return captured[0].detach().numpy()

    return embed
