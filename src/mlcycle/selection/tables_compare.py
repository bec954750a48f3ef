"""compare.py on a table: every candidate-fold is a train.py run.

A deep candidate (``config`` / ``args``) trains the config's model (``mlcycle.tables.TabularTask``
or any table task); a classic one (``estimator``: a short name such as ``random_forest`` or an
import path, with ``params``) trains ``mlcycle.tables.ClassicTabularTask`` for one epoch. Both
read the fold's ``splits.csv`` through ``data.split_file``, so each candidate-fold is a normal
run directory that evaluate.py and export.py accept, and both are scored the same way on the
fold's rows: the best checkpoint's probabilities (classification) or values (regression).

Latency, the same for every family: milliseconds per row from the raw rows (a DataFrame as the
table was read) through the fold's fitted pipeline and the model to probabilities or values,
on up to 256 of the fold's rows in batches of 64, one CPU thread, after a warm-up batch, the
best of three passes of the median batch (:func:`mlcycle.selection.measure.latency_ms`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mlcycle.core.errors import UserError
from mlcycle.core.imports import import_object
from mlcycle.selection import deep
from mlcycle.selection.compare import FOLD_OOF, FOLD_RESULT, Comparison
from mlcycle.selection.measure import latency_ms, learned_numbers, pickled_mb, torch_size
from mlcycle.selection.scores import SCORES, fold_scores, objective_of, score_key
from mlcycle.selection.spec import Candidate

CLASSIC_TASK = "mlcycle.tables.ClassicTabularTask"
REGRESSION_SCORES = ("rmse", "mae", "r2", "mse")


def is_table_config(config: dict[str, Any]) -> bool:
    """Whether a resolved train.py config reads a table (``TabularData`` or a subclass)."""
    from mlcycle.tables.data import TabularData

    cls = import_object(config["data"]["class_path"], "data class")
    return isinstance(cls, type) and issubclass(cls, TabularData)


def regression_scores(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """RMSE, MAE, MSE and R^2 (1 - SSE/SST over the fold's own targets, as torchmetrics)."""
    pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    error = target - pred
    mse = float(np.mean(error**2))
    total = float(np.sum((target - target.mean()) ** 2))
    r2 = 1.0 - float(np.sum(error**2)) / total if total > 0 else 0.0
    return {
        "rmse": round(mse**0.5, 6),
        "mae": round(float(np.mean(np.abs(error))), 6),
        "mse": round(mse, 6),
        "r2": round(r2, 6),
    }


def run_table_fold(args: list[str], run_dir: Path, pool: Any) -> dict[str, Any]:
    """train.py on one fold, then the best checkpoint's outputs on the fold's rows, its latency,
    parameters and size."""
    from mlcycle.run.loader import Run
    from mlcycle.training.fit import fit

    run_dir.mkdir(parents=True, exist_ok=True)
    clock = time.perf_counter()
    with deep.quiet_to(run_dir / "train.log"):
        cli = fit(args)
    fit_s = time.perf_counter() - clock
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
    from mlcycle.tables.classic import class_probabilities

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


def table_candidate_args(candidate: Candidate) -> list[str]:
    """train.py arguments of a candidate on a table, after the comparison's own: a classic one
    trains ClassicTabularTask for one epoch."""
    configs = [a for c in candidate.configs for a in ("--config", c)]
    if candidate.kind != "classic":
        return [*configs, *candidate.args]
    image_only = [
        key
        for key, unset in (
            ("pca", candidate.pca is None),
            ("scale", candidate.scale),
            ("features", candidate.features == "pixels"),
        )
        if not unset
    ]
    if image_only:
        raise UserError(
            f"candidate '{candidate.name}': '{image_only[0]}' is for image comparisons; on a "
            "table the data pipeline prepares the features (set it with 'args', e.g. "
            "--data.pipeline=...)"
        )
    return [
        *configs,
        f"--model.class_path={CLASSIC_TASK}",
        f"--model.init_args.estimator={candidate.estimator}",
        f"--model.init_args.params={json.dumps(candidate.params)}",
        "--trainer.max_epochs=1",
        *candidate.args,
    ]


class TableComparison(Comparison):
    """A comparison over a table's train+val rows (see the module docstring)."""

    unit = "row"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        raw = objective_of(self.spec.objective, self.config)
        if (
            not self.pool.classify
            and raw is not None
            and raw.name in SCORES
            and raw.min is not None
        ):
            # val/f1 would silently become val/rmse with the F1 minimum as the RMSE maximum
            raise UserError(
                f"objective {{metric: {raw.metric}, min: {raw.min}}} is a classification gate, "
                f"and the target '{self.data.schema.target}' is a regression; set "
                "objective.metric to val/rmse (or val/mae, val/r2) and min to its limit"
            )
        key, _ = score_key(self.objective, self.monitor, self.pool.classify)
        if not self.pool.classify and key not in REGRESSION_SCORES:
            raise UserError(
                f"objective.metric 'val/{key}' cannot be computed from predictions of a "
                f"regression; compare.py ranks by one of "
                f"{', '.join('val/' + s for s in REGRESSION_SCORES)}"
            )

    def data_record(self) -> dict[str, Any]:
        data = self.data
        return {
            "rows": len(self.pool),
            "test_rows_sealed": len(data.split_positions("test")),
            "layout": data.table.how,
            "target": data.schema.target,
            "task": data.task_kind,
        }

    def opening_line(self, candidates: list[Candidate]) -> str:
        data = self.data
        return (
            f"comparison: {len(candidates)} candidates x {self.spec.folds} folds on "
            f"{len(self.pool)} train+val rows of a table ({data.task_kind}, target "
            f"'{data.schema.target}'); test split sealed ({len(data.split_positions('test'))} "
            f"rows, never read by any candidate); {self.out}"
        )

    def candidate_args(self, candidate: Candidate) -> list[str]:
        return table_candidate_args(candidate)

    def run_table(self, candidate: Candidate, fold: int) -> dict[str, Any]:
        run_dir = self.fold_dir(candidate, fold)
        args = self.candidate_args(candidate)
        args = deep.train_args(self.base_args, args, self.split_files[fold], run_dir)
        return run_table_fold(args, run_dir, self.pool)

    def run_deep(self, candidate: Candidate, fold: int, wants_embeddings: bool) -> dict[str, Any]:
        return self.run_table(candidate, fold)

    def run_classic(self, candidate: Candidate, fold: int) -> dict[str, Any]:
        return self.run_table(candidate, fold)

    def fold_outputs(self, folder: Path, result: dict[str, Any]) -> dict[str, Any]:
        target = self.pool.target[result["rows"]]
        if self.pool.classify:
            np.savez_compressed(folder / FOLD_OOF, rows=result["rows"], probs=result["probs"])
            return fold_scores(result["probs"], target, len(self.pool.class_names))
        np.savez_compressed(folder / FOLD_OOF, rows=result["rows"], pred=result["pred"])
        return regression_scores(result["pred"], target)

    def load_fold(self, candidate: Candidate, fold: int) -> dict[str, Any]:
        folder = self.fold_dir(candidate, fold)
        record = json.loads((folder / FOLD_RESULT).read_text())
        if record.get("status") == "finished":
            oof = np.load(folder / FOLD_OOF)
            record["rows"] = oof["rows"]
            record["probs" if self.pool.classify else "pred"] = oof[
                "probs" if self.pool.classify else "pred"
            ]
        return record
