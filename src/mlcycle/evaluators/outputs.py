"""Per-item outputs kept while an evaluator runs, for the reports that need every item's
prediction (evaluation by slice): :func:`predict_split` hands each batch to :func:`keep`, and
whoever opened :func:`kept_outputs` gets them, so the split is predicted once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

KEYS = ("probs", "pred", "target", "index")  # per item: class probabilities or a value
_OPEN: list[list[dict[str, torch.Tensor]]] = []


@contextmanager
def kept_outputs() -> Iterator[list[dict[str, torch.Tensor]]]:
    """The batches predicted inside the ``with`` block (their per-item keys only)."""
    batches: list[dict[str, torch.Tensor]] = []
    _OPEN.append(batches)
    try:
        yield batches
    finally:
        _OPEN.remove(batches)


def keep(out: Any) -> None:
    """Keep a batch's per-item tensors (at most two dimensions: no masks) for every listener."""
    if not _OPEN or not isinstance(out, dict):
        return
    kept = {k: out[k] for k in KEYS if isinstance(out.get(k), torch.Tensor) and out[k].dim() <= 2}
    for batches in _OPEN:
        batches.append(kept)


def gathered(batches: list[dict[str, torch.Tensor]]) -> dict[str, np.ndarray] | None:
    """Every kept key over all batches as numpy (``scores``: probs, else pred); None when the
    task's outputs carry no per-item score, target and index."""
    if not batches:
        return None
    keys = [k for k in KEYS if all(k in b for b in batches)]
    score = next((k for k in ("probs", "pred") if k in keys), None)
    if score is None or "target" not in keys or "index" not in keys:
        return None
    joined = {k: torch.cat([b[k] for b in batches]) for k in (score, "target", "index")}
    return {
        "scores": joined[score].float().numpy(),
        "target": joined["target"].float().numpy(),
        "index": joined["index"].long().numpy(),
    }
