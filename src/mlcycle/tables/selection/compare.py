"""compare.py on a table: every candidate-fold is a train.py run.

A deep candidate (``config`` / ``args``) trains the config's model (``mlcycle.tables.TabularTask``
or any table task); a classic one (``estimator``: a short name such as ``random_forest`` or an
import path, with ``params``) trains ``mlcycle.tables.ClassicTabularTask`` for one epoch. Both
read the fold's ``splits.csv`` through ``data.split_file``, so each candidate-fold is a normal
run directory that evaluate.py and export.py accept, and both are scored the same way on the
fold's rows (:mod:`mlcycle.tables.selection.fold`): the best checkpoint's probabilities
(classification) or values (regression). Registered for the table task (``tabular``) in
mlcycle's ``pyproject.toml``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mlcycle.core.errors import UserError
from mlcycle.selection.compare.comparison import Comparison
from mlcycle.selection.compare.out_of_fold import (
    error_analysis,
    out_of_fold_probs,
    out_of_fold_values,
)
from mlcycle.selection.compare.shortlist import (
    eligible,
    eligible_values,
    write_shortlist,
    write_value_shortlist,
)
from mlcycle.selection.compare.spec import Candidate
from mlcycle.selection.compare.summary import mean_per_class_f1
from mlcycle.selection.config import build_data, task_class
from mlcycle.selection.runs import train_args
from mlcycle.selection.scores import (
    REGRESSION_SCORES,
    SCORES,
    fold_scores,
    objective_of,
    regression_scores,
)
from mlcycle.tables import boosted
from mlcycle.tables.selection import report
from mlcycle.tables.selection.fold import run_table_fold
from mlcycle.tables.selection.pool import TablePool, build_table_pool
from mlcycle.tables.selection.presets import TABLE_PRESETS

CLASSIC_TASK = "mlcycle.tables.ClassicTabularTask"
STOPPING_ARG = "--model.init_args.early_stopping_fraction=0.15"


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
    # a booster early-stops on its own share of the fold's train rows, not on the scored rows
    stopping = [STOPPING_ARG] if boosted.library(candidate.estimator or "") else []
    return [
        *configs,
        f"--model.class_path={CLASSIC_TASK}",
        f"--model.init_args.estimator={candidate.estimator}",
        f"--model.init_args.params={json.dumps(candidate.params)}",
        "--trainer.max_epochs=1",
        *stopping,
        *candidate.args,
    ]


class TableComparison(Comparison):
    """A comparison over a table's train+val rows (see the module docstring)."""

    unit: ClassVar[str] = "row"
    presets = TABLE_PRESETS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pool: TablePool

    @classmethod
    def task_monitor(cls, config: dict[str, Any], data: Any = None) -> tuple[str, str]:
        """The table task's monitor; on regression data its ``regression_monitor``
        (``val/rmse``, min), which its class-level ``monitor`` does not say."""
        data = build_data(config) if data is None else data
        if data.task_kind == "regression":
            metric, mode = task_class(config).regression_monitor
            return metric, mode
        return super().task_monitor(config, data)

    @classmethod
    def build_pool(cls, data: Any, folds: int, seed: int, gap: int = 0) -> TablePool:
        return build_table_pool(data, folds, seed, gap)

    @classmethod
    def candidate_args(cls, candidate: Candidate) -> list[str]:
        return table_candidate_args(candidate)

    @classmethod
    def fold_run_args(cls, config: dict[str, Any]) -> list[str]:
        """A booster early-stops on its share of the fold's train rows, as in compare.py
        (unless the config sets ``early_stopping_fraction`` itself)."""
        init = config["model"].get("init_args") or {}
        own = "early_stopping_fraction" not in init or init["early_stopping_fraction"] is not None
        return [] if own or not boosted.library(init.get("estimator") or "") else [STOPPING_ARG]

    def trains_runs(self, candidate: Candidate) -> bool:
        return True  # classic candidates too

    @property
    def predictions(self) -> str:
        return "probs" if self.pool.classify else "pred"

    @property
    def names(self) -> tuple[str, ...]:
        return SCORES if self.pool.classify else REGRESSION_SCORES

    @property
    def noun(self) -> str:
        return "predictions" if self.pool.classify else "predictions of a regression"

    def check_objective(self) -> None:
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
        super().check_objective()

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

    def run_fold(self, candidate: Candidate, fold: int, wants_embeddings: bool) -> dict[str, Any]:
        run_dir = self.fold_dir(candidate, fold)
        args = train_args(
            self.base_args, self.candidate_args(candidate), self.split_files[fold], run_dir
        )
        return run_table_fold(args, run_dir, self.pool)

    def score_fold(self, values: np.ndarray, target: np.ndarray) -> dict[str, Any]:
        if self.pool.classify:
            return fold_scores(values, target, len(self.pool.class_names))
        return regression_scores(values, target)

    def per_class_f1(self, records: list[dict[str, Any]]) -> dict[str, float]:
        return mean_per_class_f1(records, self.pool.class_names) if self.pool.classify else {}

    def out_of_fold(self, records: list[dict[str, Any]]) -> np.ndarray | None:
        if self.pool.classify:
            return out_of_fold_probs(records, len(self.pool), len(self.pool.class_names))
        return out_of_fold_values(records, len(self.pool))

    def analyse(
        self, rows: list[dict[str, Any]], oof: dict[str, np.ndarray], mode: str, figures: Path
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Classification: the error analysis, confusion matrices and the F1 shortlist;
        regression: residuals and the RMSE shortlist; both: permutation importance."""
        if not self.pool.classify:
            good = eligible_values(rows, oof, mode) if oof else []
            found = report.analyse(self, rows, {}, oof, good, figures)
            return found, write_value_shortlist(self, oof, good) if oof else None
        good = eligible(rows, oof, mode) if oof else []
        found = error_analysis({n: oof[n] for n in good}, self.pool, figures) if good else {}
        found.update(report.analyse(self, rows, oof, {}, good, figures))
        return found, write_shortlist(self, oof, rows, mode) if oof else None

    def notes(self, clock_s: float, fold_s: float) -> list[str]:
        return report.notes(self, clock_s, fold_s)

    def html_tables(self, found: dict[str, Any]) -> list[tuple[str, list[str], list[list[Any]]]]:
        return super().html_tables(found) + report.html_tables(found)
