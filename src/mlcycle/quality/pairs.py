"""Near-duplicate pairs: close 64-bit perceptual hashes (blockwise in numpy), confirmed by the
correlation of small grayscale thumbnails (a dHash alone matches many look-alike images)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tqdm.auto import tqdm

BLOCK_ELEMENTS = 4_000_000  # XORs per numpy step (~32 MB of uint64)


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def near_pairs(hashes: Sequence[int], max_distance: int) -> list[tuple[int, int, int]]:
    """``(i, j, distance)`` for every ``i < j`` whose hashes differ in at most ``max_distance`` bits.

    All pairs are compared (O(n^2) XOR + popcount, about a second per 10^8 pairs), so nothing
    is missed the way bucketed approximate searches can.
    """
    h = np.asarray([int(x) for x in hashes], dtype=np.uint64)
    n = len(h)
    rows = max(1, BLOCK_ELEMENTS // max(n, 1))
    found: list[tuple[int, int, int]] = []
    starts = range(0, n, rows)
    for start in tqdm(starts, desc="comparing hashes", leave=False, disable=n < 20_000):
        block = h[start : start + rows, None] ^ h[None, start:]
        dist = np.bitwise_count(block)
        ii, jj = np.nonzero(dist <= max_distance)
        for i, j in zip(ii.tolist(), jj.tolist(), strict=True):
            a, b = start + i, start + j
            if b > a:
                found.append((a, b, int(dist[i, j])))
    return found


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two thumbnails: 1.0 for the same picture at another brightness,
    contrast, encoding or size. Two flat thumbnails of similar level count as identical."""
    x, y = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    sx, sy = x.std(), y.std()
    if sx < 1e-6 or sy < 1e-6:
        return 1.0 if sx < 1e-6 and sy < 1e-6 and abs(x.mean() - y.mean()) < 8 else 0.0
    return float(((x - x.mean()) * (y - y.mean())).mean() / (sx * sy))
