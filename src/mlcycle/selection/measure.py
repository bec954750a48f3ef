"""What the leaderboard measures of every model, the same way for every family: inference
milliseconds per image (from the decoded uint8 images to probabilities, batches of 64, one
CPU thread, after a warm-up batch), learned parameters and size on disk."""

from __future__ import annotations

import io
import pickle
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

BATCH = 64
MAX_IMAGES = 256


def latency_ms(predict: Callable[[np.ndarray], np.ndarray], images: np.ndarray) -> float:
    """Milliseconds per image ``predict`` takes on ``images`` (uint8, N x H x W x C): on at most
    256 of them, in batches of 64, on one CPU thread (so a busy machine or a library's own
    threading favours no family), after a warm-up batch; the best of three passes of the
    median batch."""
    images = images[:MAX_IMAGES]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            predict(images[:BATCH])
            passes = [_median_pass(predict, images) for _ in range(3)]
    finally:
        torch.set_num_threads(threads)
    return round(min(passes), 4)


def _median_pass(predict: Callable[[np.ndarray], np.ndarray], images: np.ndarray) -> float:
    per_image = []
    for start in range(0, len(images), BATCH):
        batch = images[start : start + BATCH]
        clock = time.perf_counter()
        predict(batch)
        per_image.append((time.perf_counter() - clock) * 1000 / len(batch))
    return float(np.median(per_image))


def torch_predictor(
    model: torch.nn.Module, mean: list[float], std: list[float]
) -> Callable[[np.ndarray], np.ndarray]:
    """uint8 NHWC images -> class probabilities through ``model`` (eval, CPU, float32)."""
    model = model.float().cpu().eval()
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)

    @torch.no_grad()
    def predict(images: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255
        return model((x - mean_t) / std_t).softmax(dim=1).numpy()

    return predict


def torch_size(model: torch.nn.Module) -> tuple[int, float]:
    """Parameters, and megabytes of the saved weights (a state dict, as export reads it)."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return sum(p.numel() for p in model.parameters()), round(buffer.tell() / 1e6, 4)


def learned_numbers(estimator: Any, seen: set[int] | None = None) -> int:
    """The numbers a fitted scikit-learn estimator learned: its fitted array attributes (the
    names ending in ``_``), trees' nodes, and those of the estimators it holds."""
    seen = set() if seen is None else seen
    if isinstance(estimator, list | tuple):
        return sum(learned_numbers(v, seen) for v in estimator)
    if not hasattr(estimator, "fit") or id(estimator) in seen:
        return 0
    seen.add(id(estimator))
    total = 0
    for name, value in vars(estimator).items():
        if isinstance(value, np.ndarray) and name.endswith("_") and value.dtype != object:
            total += value.size
        elif name == "_fit_X" and isinstance(value, np.ndarray):  # k-NN keeps its train rows
            total += value.size
        elif name == "tree_" and hasattr(value, "node_count"):
            total += int(value.node_count) * 4  # feature, threshold, two children
        elif name == "_predictors":  # HistGradientBoosting's trees
            total += sum(int(p.nodes.size) * 4 for row in value for p in row)
        elif hasattr(value, "fit") or isinstance(value, list | tuple):
            total += learned_numbers(value, seen)
    return total


def pickled_mb(estimator: Any) -> float:
    return round(len(pickle.dumps(estimator)) / 1e6, 4)
