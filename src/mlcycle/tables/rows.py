"""The worst predictions of a split as a table: what the model said, what was true, and the
row's own columns, for the training callback and evaluate.py alike."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def raw_rows(data: Any, split: str, index: np.ndarray) -> pd.DataFrame | None:
    """The raw rows (as read, target included) of ``index``, the row positions a data module's
    loaders yield; None when the data module cannot give them."""
    frame_of = getattr(data, "frame", None)
    if frame_of is None:
        return None
    try:
        frame = frame_of(split)
    except Exception:  # a report must not stop training
        return None
    positions = getattr(data, "split_positions", None)
    if callable(positions):  # index holds table positions; the frame is the split's rows
        where = {int(p): i for i, p in enumerate(positions(split))}
        picks = [where.get(int(i)) for i in index]
        if any(p is None for p in picks):
            return None
        return frame.iloc[picks].reset_index(drop=True)
    if len(index) and int(np.max(index)) >= len(frame):
        return None
    return frame.iloc[np.asarray(index, dtype=int)].reset_index(drop=True)


def worst_table(
    data: Any,
    split: str,
    scores: np.ndarray,
    target: np.ndarray,
    index: np.ndarray,
    class_names: list[str],
    limit: int,
) -> pd.DataFrame:
    """The ``limit`` worst rows, worst first. Classification (``scores`` [N, K]
    probabilities): the lowest probability of the true class; regression (``scores`` [N]):
    the largest absolute error."""
    scores, target, index = np.asarray(scores), np.asarray(target), np.asarray(index)
    if scores.ndim == 2:
        true_p = scores[np.arange(len(target)), target.astype(int)]
        order = np.argsort(true_p, kind="stable")[:limit]
        best = scores.argmax(axis=1)

        def name(i: int) -> str:
            return class_names[i] if i < len(class_names) else str(i)

        table = pd.DataFrame(
            {
                "row": index[order].astype(int),
                "true": [name(int(t)) for t in target[order]],
                "predicted": [name(int(b)) for b in best[order]],
                "confidence": np.round(scores[order, best[order]], 6),
                "p_true": np.round(true_p[order], 6),
            }
        )
    else:
        error = np.abs(scores.astype(float) - target.astype(float))
        order = np.argsort(-error, kind="stable")[:limit]
        table = pd.DataFrame(
            {
                "row": index[order].astype(int),
                "true": target[order].astype(float),
                "predicted": np.round(scores[order].astype(float), 6),
                "abs_error": np.round(error[order], 6),
            }
        )
    raw = raw_rows(data, split, index[order])
    if raw is not None:
        raw = raw.rename(columns={c: f"{c}" if c not in table else f"raw_{c}" for c in raw})
        table = pd.concat([table, raw], axis=1)
    return table


def markdown(table: pd.DataFrame) -> str:
    """A small table as Markdown (TensorBoard renders it as a table)."""

    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    head = "| " + " | ".join(cell(c) for c in table.columns) + " |"
    rule = "|" + "---|" * len(table.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([head, rule, *body])
