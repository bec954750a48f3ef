"""Greedy k-center (farthest-first traversal, Gonzalez 1985; the core-set selection of Sener
and Savarese 2018): each pick is the item farthest from every earlier pick, so a budget covers
the embedding space instead of piling up in one uncertain corner."""

from __future__ import annotations

import numpy as np


def k_center(embeddings: np.ndarray, k: int, first: int = 0) -> tuple[list[int], list[float]]:
    """``k`` row indices of ``embeddings`` [N, D], starting at ``first``, and each pick's
    distance to the picks before it (0 for the first). Ties go to the lower index, so an
    order given by the caller (most uncertain first) decides between equally far items."""
    x = np.asarray(embeddings, dtype=np.float64)
    k = min(k, len(x))
    if k <= 0:
        return [], []
    picks, distances = [first], [0.0]
    nearest = np.linalg.norm(x - x[first], axis=1)
    nearest[first] = -np.inf  # a pick is never picked again, even among duplicates
    while len(picks) < k:
        chosen = int(np.argmax(nearest))
        picks.append(chosen)
        distances.append(float(nearest[chosen]))
        nearest = np.minimum(nearest, np.linalg.norm(x - x[chosen], axis=1))
        nearest[chosen] = -np.inf
    return picks, distances


def normalized(embeddings: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (distances then compare directions, as cosine does)."""
    x = np.asarray(embeddings, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)
