"""Feature selection on the train matrix (``data.pipeline.select``): constant and near-constant
columns, the later of two correlated columns, and all but the top k by mutual information
with the target are dropped, each with its reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mlcycle.tables.steps import reason

Drop = Callable[[int, str], None]


def select_features(
    matrix: np.ndarray,
    y: Any,
    names: list[str],
    cfg: dict[str, Any],
    task: str,
    reasons: list[dict[str, str]],
) -> list[int]:
    """The numeric output columns of ``matrix`` to keep; each one dropped gets its reason in
    ``reasons``. ``cfg``: the resolved ``data.pipeline``; ``task``: ``classification`` or
    ``regression`` (for mutual information)."""
    sel = cfg["select"]
    keep = list(range(matrix.shape[1]))

    def drop(j: int, why: str) -> None:
        keep.remove(j)
        reasons.append(reason("select", names[j], why))

    _constant(matrix, keep, sel, drop)
    if sel["correlated"] is not None and len(keep) > 1:
        _correlated(matrix, keep, names, sel, drop)
    k = sel["mutual_info_top_k"]
    if k is not None and y is not None and len(keep) > int(k):
        _mutual_info(matrix, y, keep, k, task, int(cfg["seed"]), drop)
    return sorted(keep)


def _constant(matrix: np.ndarray, keep: list[int], sel: dict[str, Any], drop: Drop) -> None:
    for j in list(keep):
        column = matrix[:, j]
        if sel["constant"] and np.nanstd(column) == 0:
            drop(j, "constant on train")
        elif sel["near_constant"] is not None and len(column):
            _, counts = np.unique(column, return_counts=True)
            share = counts.max() / len(column)
            if share >= float(sel["near_constant"]):
                drop(
                    j,
                    f"near-constant: one value in {share:.1%} of train rows "
                    f"(select.near_constant={sel['near_constant']})",
                )


def _correlated(
    matrix: np.ndarray, keep: list[int], names: list[str], sel: dict[str, Any], drop: Drop
) -> None:
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(matrix[:, keep], rowvar=False)
    order = list(keep)
    for a in range(len(order)):
        for b in range(a + 1, len(order)):
            i, j = order[a], order[b]
            r = corr[a, b]
            if i in keep and j in keep and np.isfinite(r) and abs(r) > float(sel["correlated"]):
                drop(
                    j,
                    f"correlation {r:.3f} with '{names[i]}' (select.correlated="
                    f"{sel['correlated']})",
                )


def _mutual_info(
    matrix: np.ndarray, y: Any, keep: list[int], k: Any, task: str, seed: int, drop: Drop
) -> None:
    from sklearn.feature_selection import mutual_info_classif, mutual_info_regression

    score = mutual_info_regression if task == "regression" else mutual_info_classif
    info = score(matrix[:, keep], np.asarray(y), random_state=seed)
    ranked = sorted(zip(info, keep, strict=True), key=lambda t: (-t[0], t[1]))
    for rank, (value, j) in enumerate(ranked, start=1):
        if rank > int(k):
            drop(
                j,
                f"mutual information {value:.4f} ranks {rank} of {len(ranked)} "
                f"(select.mutual_info_top_k={k})",
            )
