"""A table candidate's fold: a train.py run on the fold's ``splits.csv``, then the best
checkpoint's outputs on the fold's rows, its latency, parameters and size.

Latency, the same for every family: milliseconds per row from the raw rows (a DataFrame as the
table was read) through the fold's fitted pipeline and the model to probabilities or values,
on up to 256 of the fold's rows in batches of 64, one CPU thread, after a warm-up batch, the
best of three passes of the median batch (:func:`mlcycle.selection.measure.latency_ms`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from mlcycle.core.errors import UserError
from mlcycle.run.loader import Run
from mlcycle.selection.measure import latency_ms, learned_numbers, pickled_mb, torch_size
from mlcycle.selection.runs import fit_quietly
from mlcycle.tables.classic import class_probabilities


def run_table_fold(args: list[str], run_dir: Path, pool: Any) -> dict[str, Any]:
    """train.py on one fold, then the best checkpoint's outputs on the fold's rows, its latency,
    parameters and size."""
    cli, fit_s = fit_quietly(args, run_dir)
    data, model = cli.datamodule, Run(run_dir).load_model("best")
    if data.table.hashes != pool.data.table.hashes:
        raise UserError(
            f"the fold run '{run_dir}' read other rows than the comparison's base data; the "
            "table changed during the comparison"
        )
    row_of = pool.row_of_position
    positions = data.split_positions("val")
    missing = [p for p in positions if p not in row_of]
    if missing:
        raise UserError(f"fold run '{run_dir}' validated on row {missing[0]}, not in the pool")
    x, _ = data.arrays("val")
    with torch.no_grad():
        out = model.scores(torch.from_numpy(x)).float().numpy()
    record: dict[str, Any] = {
        "fit_s": round(fit_s, 2),
        "rows": np.array([row_of[p] for p in positions]),
        "latency_ms": latency_ms(row_predictor(model, data), np.asarray(positions)),
    }
    record["probs" if pool.classify else "pred"] = out.astype(np.float32)
    fitted = getattr(model, "fitted", None)
    if fitted is not None:  # a scikit-learn estimator: the numbers it learned, pickled size
        record.update(params=learned_numbers(fitted), size_mb=pickled_mb(fitted))
    else:
        record["params"], record["size_mb"] = torch_size(model.model)
    return record


def frame_predictor(model: Any, data: Any):
    """Raw rows (a DataFrame) -> probabilities or values, through the data's fitted pipeline."""
    pipeline = data.pipeline
    model = model.float().cpu().eval()
    fitted = getattr(model, "fitted", None)

    @torch.no_grad()
    def predict(rows: Any) -> np.ndarray:
        x = np.asarray(pipeline.transform(rows.reset_index(drop=True)), dtype=np.float32)
        if fitted is None:
            return model.scores(torch.from_numpy(x)).numpy()
        # the estimator itself: the task's scores() raises OpenMP's threads to the cores less
        # one, and the latency is measured on one thread for every family
        if model.regression:
            return np.asarray(fitted.predict(x), dtype=np.float32).reshape(-1)
        return class_probabilities(fitted, x, int(model.hparams.num_classes))

    return predict


def row_predictor(model: Any, data: Any):
    """Table positions -> probabilities or values (what the latency measures)."""
    frame, predict = data.table.frame, frame_predictor(model, data)
    return lambda positions: predict(frame.iloc[positions])
