"""Cleaning and feature engineering as one scikit-learn Pipeline, built from ``data.pipeline``
and fitted on the train rows only.

The Pipeline has four steps:

1. ``coerce`` (:class:`~mlcycle.tables.steps.Coerce`): the feature columns read as their kinds;
2. ``dates`` (:class:`~mlcycle.tables.steps.DateParts`): date/time columns become their parts;
3. ``aggregates`` (:class:`~mlcycle.tables.steps.GroupAggregates`): statistics per group;
4. ``columns`` (:class:`ColumnPlan`): decides per column on the train rows (which columns to
   drop for missing values, which transform ``auto`` picks, the categories to keep), builds a
   stock ``ColumnTransformer`` (``transformer_``) of imputation, outlier handling, transforms,
   bucketing, encoding and scaling, fits it, then selects features (``keep_``).

``transform(frame)`` gives one float32 matrix: the numeric features first, then (only with
``categorical.encode: embedding``) one integer code per categorical column (0: missing or
unseen, 1..n: the train categories). Every decision is recorded with its reason
(:func:`describe_features`). :func:`learned_params` writes what was learned as JSON: with the
resolved config and the schema, the fitted pipeline can be rebuilt from the run's train rows
and checked against it (:func:`compare_params`); no pickle is ever loaded.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline

from mlcycle.core.errors import UserError
from mlcycle.tables.column_branches import (
    MISSING_CATEGORY,
    SKEWED,
    bucket_branch,
    categorical_branches,
    drop_missing_columns,
    flagged_columns,
    numeric_branches,
    transform_for,
)
from mlcycle.tables.feature_selection import select_features
from mlcycle.tables.learned import compare_params, learned_params
from mlcycle.tables.pipeline_config import CHOICES, DEFAULTS, KEY, check_names, resolve_config
from mlcycle.tables.schema import Schema
from mlcycle.tables.step_reasons import Fitted, step_reasons
from mlcycle.tables.steps import (
    CYCLES,
    MISSING_TEXT,
    CategoryCodes,
    Coerce,
    DateParts,
    GroupAggregates,
    MissingFlags,
    OutlierFlags,
    reason,
)


def build_pipeline(schema: Schema, config: dict[str, Any] | None = None) -> Pipeline:
    """The unfitted Pipeline of ``config`` (``data.pipeline``) for the features of ``schema``;
    fit it on the train rows only (:func:`fit_pipeline` does, with ``drop_rows_over``)."""
    cfg = resolve_config(config)
    check_names(schema, cfg)
    transform_names = [c for c in cfg["transform"]["columns"] if c not in schema.feature_names]
    kinds = {c.name: c.kind for c in schema.features}
    dates = [c for c, k in kinds.items() if k == "datetime"]
    return Pipeline(
        [
            ("coerce", Coerce(kinds)),
            ("dates", DateParts(dates, list(cfg["dates"]["parts"]), bool(cfg["dates"]["cyclic"]))),
            ("aggregates", GroupAggregates(cfg["aggregates"])),
            (
                "columns",
                ColumnPlan(kinds, cfg, schema.task, len(schema.classes), transform_names),
            ),
        ]
    )


def fit_pipeline(
    schema: Schema, config: dict[str, Any] | None, frame: pd.DataFrame, y: np.ndarray
) -> tuple[Pipeline, np.ndarray, np.ndarray]:
    """Build and fit the pipeline on the train rows ``frame`` (targets ``y``).

    Returns the fitted pipeline, the train matrix (float32; target encoding cross-fitted, as
    a model must see it) and the mask of the train rows kept (``missing.drop_rows_over``).
    """
    cfg = resolve_config(config)
    pipeline = build_pipeline(schema, cfg)
    keep = np.ones(len(frame), dtype=bool)
    limit = cfg["missing"]["drop_rows_over"]
    if limit is not None:
        share = missing_share(frame, schema)
        keep = share <= float(limit)
        if not keep.any():
            raise UserError(
                f"{KEY}.missing.drop_rows_over={limit} drops every train row; raise it or set null"
            )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module="sklearn")
        warnings.filterwarnings("ignore", category=RuntimeWarning)
        matrix = pipeline.fit_transform(frame[keep].reset_index(drop=True), np.asarray(y)[keep])
    if limit is not None:
        dropped = int((~keep).sum())
        pipeline.named_steps["coerce"].reasons_.insert(
            0,
            reason(
                "drop_rows",
                "*",
                f"{dropped} train row(s) with over {float(limit):.0%} of their features missing "
                f"(missing.drop_rows_over={limit}); val and test rows are never dropped",
            ),
        )
    return pipeline, np.asarray(matrix, dtype=np.float32), keep


def missing_share(frame: pd.DataFrame, schema: Schema) -> np.ndarray:
    """Per row, the share of its feature values that are missing (or unreadable)."""
    kinds = {c.name: c.kind for c in schema.features}
    coerced = Coerce(kinds).fit(frame).transform(frame)
    missing = np.zeros(len(frame))
    for column, kind in kinds.items():
        values = coerced[column]
        gone = values == MISSING_TEXT if kind in ("categorical", "text") else values.isna()
        missing += np.asarray(gone, dtype=float)
    return missing / max(1, len(kinds))


class ColumnPlan(TransformerMixin, BaseEstimator):
    """The per-column part of the pipeline: planned and fitted on the train rows.

    ``fit`` decides from the train rows what each column needs, builds ``transformer_`` (a
    stock scikit-learn ``ColumnTransformer``: the part skl2onnx converts, with the custom steps
    of :mod:`mlcycle.tables.steps` inside), fits it, and keeps the output columns ``keep_``
    that feature selection leaves. ``transform(X)`` is ``transformer_.transform(X)[:, keep_]``
    as float32 (ONNX: the converted ColumnTransformer, then ``Gather`` on axis 1).

    Args:
        kinds: ``{column: kind}`` of the schema's features (new columns are numeric).
        config: the resolved ``data.pipeline``.
        task: ``classification`` or ``regression`` (target encoding, mutual information).
        num_classes: classes of a classification target.
        extra_names: names in ``transform.columns`` that are not table columns (date parts,
            aggregates); checked once the columns exist.
    """

    def __init__(
        self,
        kinds: dict[str, str] | None = None,
        config: dict[str, Any] | None = None,
        task: str = "classification",
        num_classes: int = 2,
        extra_names: list[str] | None = None,
    ) -> None:
        self.kinds, self.config = kinds, config
        self.task, self.num_classes, self.extra_names = task, num_classes, extra_names

    # sklearn calls fit_transform on a Pipeline's steps: the train output keeps target encoding
    # cross-fitted (TargetEncoder.fit_transform), which transform on the same rows would not.
    def fit(self, X: pd.DataFrame, y: Any = None) -> ColumnPlan:
        self.fit_transform(X, y)
        return self

    def fit_transform(self, X: pd.DataFrame, y: Any = None, **_: Any) -> np.ndarray:
        cfg = resolve_config(self.config)
        self.reasons_: list[dict[str, str]] = []
        self.transformer_ = self._plan(X, y, cfg)
        matrix = np.asarray(self.transformer_.fit_transform(X, y), dtype=float)
        try:
            names = list(self.transformer_.get_feature_names_out())
        except ValueError:  # two outputs share a name: prefix each with its branch
            self.transformer_.verbose_feature_names_out = True
            names = list(self.transformer_.get_feature_names_out())
        self._describe_fitted(X)
        width = matrix.shape[1]
        codes = self._codes_branch()
        num_codes = len(codes.categories_) if codes is not None else 0
        numeric = width - num_codes
        kept = select_features(
            matrix[:, :numeric], y, names[:numeric], cfg, self.task, self.reasons_
        )
        self.keep_ = np.asarray(kept + list(range(numeric, width)), dtype=int)
        self.feature_names_ = [str(names[i]) for i in self.keep_]
        self.num_numeric_ = len(kept)
        self.cardinalities_ = codes.cardinalities if codes is not None else []
        if not len(self.keep_):
            raise UserError(
                f"{KEY}: no feature is left after cleaning and selection (see the reasons in "
                "pipeline.json); loosen data.pipeline.select or missing.drop_columns_over"
            )
        return matrix[:, self.keep_].astype(np.float32)

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module="sklearn")
            matrix = np.asarray(self.transformer_.transform(X), dtype=float)
        return matrix[:, self.keep_].astype(np.float32)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(self.feature_names_, dtype=object)

    # --- planning ----------------------------------------------------------------------------

    def _kind(self, column: str) -> str:
        return (self.kinds or {}).get(column, "numeric")  # date parts and aggregates

    def _plan(self, X: pd.DataFrame, y: Any, cfg: dict[str, Any]) -> ColumnTransformer:
        columns = [str(c) for c in X.columns]
        unknown = [c for c in self.extra_names or [] if c not in columns]
        if unknown:
            raise UserError(
                f"{KEY}.transform.columns names '{unknown[0]}', which is neither a column of "
                f"the table nor a date part or aggregate (columns: {', '.join(columns)})"
            )
        kind = {c: self._kind(c) for c in columns}
        kept, self.missing_ = drop_missing_columns(X, kind, cfg, self.reasons_)
        numeric = [c for c in kept if kind[c] == "numeric"]
        booleans = [c for c in kept if kind[c] == "boolean"]
        categorical = [c for c in kept if kind[c] in ("categorical", "text")]
        table_numeric = [c for c in numeric if c in (self.kinds or {})]

        bucket_cols = [c for c in cfg["bucket"]["columns"] if c in numeric]
        if cfg["bucket"]["replace"]:
            numeric = [c for c in numeric if c not in bucket_cols]
        outlier_cols = [c for c in (cfg["outliers"]["columns"] or table_numeric) if c in numeric]
        self.transform_choice_: dict[str, tuple[str, str]] = {
            c: transform_for(c, X[c].to_numpy(float), cfg, self.kinds or {}) for c in numeric
        }
        branches = numeric_branches(numeric, outlier_cols, self.transform_choice_, cfg)
        if bucket_cols:
            branches.append(bucket_branch(bucket_cols, cfg))
        flagged, self.flag_names_ = flagged_columns(
            numeric + booleans, self.missing_, self.kinds or {}
        )
        if cfg["missing"]["indicator"] and flagged:
            branches.append(("missing", MissingFlags(self.flag_names_), flagged))
        if cfg["outliers"]["handle"] == "flag" and outlier_cols:
            # On the observed values: a missing value is not an outlier (its flag is 0).
            rule, factor = cfg["outliers"]["rule"], float(cfg["outliers"]["factor"])
            branches.append(("outliers", OutlierFlags(rule, factor), outlier_cols))
        if booleans:
            imputer = SimpleImputer(strategy="most_frequent", keep_empty_features=True)
            branches.append(("boolean", imputer, booleans))
        # categorical columns: impute -> encode; embedding codes go last
        encodes = {
            c: cfg["categorical"]["columns"].get(c, cfg["categorical"]["encode"])
            for c in categorical
        }
        for c in [c for c in cfg["categorical"]["columns"] if kind.get(c) == "boolean"]:
            self.reasons_.append(reason("encode", c, "boolean: 0/1 (categorical.columns ignored)"))
        branches += categorical_branches(X, y, encodes, cfg, self._target_type())
        if not branches:
            raise UserError(
                f"{KEY}: every feature column was dropped (see the reasons in pipeline.json); "
                "loosen missing.drop_columns_over"
            )
        return ColumnTransformer(
            branches, remainder="drop", sparse_threshold=0, verbose_feature_names_out=False
        )

    def _target_type(self) -> str:
        if self.task == "regression":
            return "continuous"
        return "binary" if self.num_classes <= 2 else "multiclass"

    # --- after fitting ----------------------------------------------------------------------

    def _codes_branch(self) -> CategoryCodes | None:
        for name, branch, _ in self.transformer_.transformers_:
            if name == "embedding":
                return branch.named_steps["encode"]
        return None

    def _describe_fitted(self, X: pd.DataFrame) -> None:
        """One reason per column and step, with the values learned on train."""
        for name, branch, cols in self.transformer_.transformers_:
            if name == "remainder":
                continue
            steps = branch.named_steps if isinstance(branch, Pipeline) else {name: branch}
            at = Fitted(name, list(cols), self.missing_, self.transform_choice_)
            for step in steps.values():
                self.reasons_ += step_reasons(step, at)


# --- what was fitted -----------------------------------------------------------------------------


def describe_features(fitted: Pipeline) -> dict[str, Any]:
    """The output columns of a fitted pipeline: ``names``, ``num_numeric`` (the numeric
    columns come first), ``cardinalities`` (codes per embedding column, 0 included) and
    ``steps`` (``[{step, column, reason}]``, every decision in order)."""
    plan: ColumnPlan = fitted.named_steps["columns"]
    steps = []
    for _, step in fitted.steps:
        steps += list(getattr(step, "reasons_", []))
    return {
        "names": list(plan.feature_names_),
        "num_numeric": int(plan.num_numeric_),
        "cardinalities": [int(c) for c in plan.cardinalities_],
        "steps": steps,
    }


CUSTOM_STEPS = (
    "mlcycle.tables.steps.Coerce",
    "mlcycle.tables.steps.DateParts",
    "mlcycle.tables.steps.GroupAggregates",
    "mlcycle.tables.steps.MissingFlags",
    "mlcycle.tables.steps.Clip",
    "mlcycle.tables.steps.OutlierFlags",
    "mlcycle.tables.steps.Shift",
    "mlcycle.tables.steps.CategoryCodes",
    "mlcycle.tables.pipeline.ColumnPlan",
)


__all__ = [
    "CHOICES",
    "CUSTOM_STEPS",
    "CYCLES",
    "DEFAULTS",
    "KEY",
    "MISSING_CATEGORY",
    "SKEWED",
    "ColumnPlan",
    "build_pipeline",
    "compare_params",
    "describe_features",
    "fit_pipeline",
    "learned_params",
    "resolve_config",
]
