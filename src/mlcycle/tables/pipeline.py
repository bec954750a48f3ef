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

import copy
import difflib
import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    KBinsDiscretizer,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    PowerTransformer,
    StandardScaler,
    TargetEncoder,
)

from mlcycle.core.errors import UserError
from mlcycle.tables.schema import Schema
from mlcycle.tables.steps import (
    CYCLES,
    DATE_PARTS,
    MISSING_TEXT,
    STATS,
    CategoryCodes,
    Clip,
    Coerce,
    DateParts,
    GroupAggregates,
    MissingFlags,
    OutlierFlags,
    Shift,
    reason,
)

KEY = "data.pipeline"
DEFAULTS: dict[str, Any] = {
    "missing": {
        "drop_columns_over": 0.5,  # drop a feature column missing in more of the train rows
        "drop_rows_over": None,  # drop a train row missing more of its features (never val/test)
        "numeric": "median",  # mean | median | most_frequent | constant
        "fill_value": 0.0,  # the numeric constant
        "categorical": "constant",  # constant (a "missing" category) | most_frequent
        "indicator": True,  # a 0/1 <column>_missing column for each column missing in train
    },
    "outliers": {
        "handle": "none",  # none | clip | flag
        "rule": "iqr",  # iqr: outside [q1 - f*IQR, q3 + f*IQR]; zscore: |x - mean| > f*std
        "factor": None,  # f: 1.5 for iqr, 3.0 for zscore
        "columns": None,  # None: every numeric column of the table
    },
    "transform": {
        "default": "none",  # none | log | sqrt | yeo-johnson | box-cox | auto
        "columns": {},  # {column: transform}
    },
    "bucket": {
        "columns": [],  # numeric columns to cut into bins (one-hot)
        "bins": 5,
        "strategy": "quantile",  # quantile | uniform
        "replace": False,  # true: the bins replace the column; false: both
    },
    "dates": {"parts": ["year", "month", "weekday", "hour"], "cyclic": True},
    "categorical": {
        "encode": "onehot",  # onehot | ordinal | target | embedding
        "columns": {},  # {column: encode}
        "max_categories": 20,  # one-hot: the most frequent N get a column, the rest none
        "min_frequency": 1,  # a category seen fewer times in train counts as unseen
    },
    "aggregates": [],  # [{column, by, stats: [mean, count, ...]}]
    "scale": "standard",  # standard | minmax | none
    "select": {
        "constant": True,  # drop columns constant on train
        "near_constant": 0.99,  # drop columns whose most frequent value has this share (None: off)
        "correlated": 0.95,  # drop the later of two columns correlated above this (None: off)
        "mutual_info_top_k": None,  # keep the k columns with the most mutual information
    },
    "seed": 0,  # target encoding's folds, mutual information
}
CHOICES: dict[str, tuple[Any, ...]] = {
    "missing.numeric": ("mean", "median", "most_frequent", "constant"),
    "missing.categorical": ("constant", "most_frequent"),
    "outliers.handle": ("none", "clip", "flag"),
    "outliers.rule": ("iqr", "zscore"),
    "transform.default": ("none", "log", "sqrt", "yeo-johnson", "box-cox", "auto"),
    "bucket.strategy": ("quantile", "uniform"),
    "categorical.encode": ("onehot", "ordinal", "target", "embedding"),
    "scale": ("standard", "minmax", "none"),
}
SKEWED = 1.0  # transform: auto treats a column with |skew| above this
MISSING_CATEGORY = "missing"


# --- the config ----------------------------------------------------------------------------------


def _unknown(key: str, known: list[str]) -> UserError:
    close = difflib.get_close_matches(key.rsplit(".", 1)[-1], known, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return UserError(f"{KEY}.{key} is not a pipeline option; {hint}options: {', '.join(known)}")


def _merge(defaults: dict[str, Any], given: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = copy.deepcopy(defaults)
    for key, value in (given or {}).items():
        if key not in defaults:
            raise _unknown(prefix + key, list(defaults))
        free = key in ("columns", "aggregates") or isinstance(defaults[key], list)
        if isinstance(defaults[key], dict) and not free:
            if not isinstance(value, dict):
                raise UserError(f"{KEY}.{prefix}{key} must be a mapping of options")
            out[key] = _merge(defaults[key], value, f"{prefix}{key}.")
        else:
            out[key] = copy.deepcopy(value)
    return out


def _share(config: dict[str, Any], path: str, upper: float = 1.0) -> None:
    group, key = path.split(".")
    value = config[group][key]
    if value is not None and not (0 <= float(value) <= upper):
        raise UserError(f"{KEY}.{path}={value} must be a share between 0 and {upper}")


def resolve_config(config: dict[str, Any] | None) -> dict[str, Any]:
    """``config`` over :data:`DEFAULTS`, checked: an unknown key or value is a one-line error."""
    cfg = _merge(DEFAULTS, config or {})
    for path, choices in CHOICES.items():
        group, _, key = path.partition(".")
        value = cfg[group][key] if key else cfg[group]
        if value not in choices:
            raise UserError(f"{KEY}.{path}='{value}' is not one of {', '.join(map(str, choices))}")
    for path, choices in (
        ("transform.columns", CHOICES["transform.default"]),
        ("categorical.columns", CHOICES["categorical.encode"]),
    ):
        group = path.split(".")[0]
        if not isinstance(cfg[group]["columns"], dict):
            raise UserError(f"{KEY}.{path} must map column names to one of {', '.join(choices)}")
        for column, value in cfg[group]["columns"].items():
            if value not in choices:
                raise UserError(
                    f"{KEY}.{path}.{column}='{value}' is not one of {', '.join(choices)}"
                )
    for path in ("missing.drop_columns_over", "missing.drop_rows_over", "select.near_constant"):
        _share(cfg, path)
    _share(cfg, "select.correlated")
    if cfg["outliers"]["factor"] is None:
        cfg["outliers"]["factor"] = 1.5 if cfg["outliers"]["rule"] == "iqr" else 3.0
    if int(cfg["bucket"]["bins"]) < 2:
        raise UserError(f"{KEY}.bucket.bins={cfg['bucket']['bins']} must be 2 or more")
    bad = [p for p in cfg["dates"]["parts"] if p not in DATE_PARTS]
    if bad:
        raise UserError(f"{KEY}.dates.parts: '{bad[0]}' is not one of {', '.join(DATE_PARTS)}")
    specs = []
    for i, spec in enumerate(cfg["aggregates"] or []):
        where = f"{KEY}.aggregates[{i}]"
        if not isinstance(spec, dict) or not {"column", "by"} <= set(spec):
            raise UserError(f"{where} needs 'column' and 'by' (and optionally 'stats')")
        extra = set(spec) - {"column", "by", "stats"}
        if extra:
            raise UserError(f"{where}.{sorted(extra)[0]} is not an option; use column, by, stats")
        stats = spec.get("stats") or ["mean"]
        stats = [stats] if isinstance(stats, str) else list(stats)
        wrong = [s for s in stats if s not in STATS]
        if wrong:
            raise UserError(f"{where}.stats: '{wrong[0]}' is not one of {', '.join(STATS)}")
        specs.append({"column": str(spec["column"]), "by": str(spec["by"]), "stats": stats})
    cfg["aggregates"] = specs
    k = cfg["select"]["mutual_info_top_k"]
    if k is not None and int(k) < 1:
        raise UserError(f"{KEY}.select.mutual_info_top_k={k} must be 1 or more, or null")
    return cfg


def _check_names(schema: Schema, cfg: dict[str, Any]) -> None:
    """Every column the config names is a feature of the right kind."""
    kinds = {c.name: c.kind for c in schema.features}
    dropped = {c.name: c.dropped for c in schema.columns if c.dropped}

    def need(column: str, where: str, allowed: tuple[str, ...]) -> None:
        if column in dropped:
            raise UserError(f"{where} names '{column}', which is not a feature ({dropped[column]})")
        if column not in kinds:
            close = difflib.get_close_matches(column, list(kinds), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise UserError(f"{where} names '{column}', which is not a column of the table{hint}")
        if kinds[column] not in allowed:
            raise UserError(
                f"{where} names '{column}', a {kinds[column]} column; it needs a "
                f"{' or '.join(allowed)} column"
            )

    for column in cfg["bucket"]["columns"]:
        need(column, f"{KEY}.bucket.columns", ("numeric",))
    for column in cfg["outliers"]["columns"] or []:
        need(column, f"{KEY}.outliers.columns", ("numeric",))
    for column in cfg["categorical"]["columns"]:
        need(column, f"{KEY}.categorical.columns", ("categorical", "text", "boolean"))
    for i, spec in enumerate(cfg["aggregates"]):
        need(spec["column"], f"{KEY}.aggregates[{i}].column", ("numeric", "boolean"))
        need(spec["by"], f"{KEY}.aggregates[{i}].by", ("categorical", "text", "boolean", "numeric"))


def build_pipeline(schema: Schema, config: dict[str, Any] | None = None) -> Pipeline:
    """The unfitted Pipeline of ``config`` (``data.pipeline``) for the features of ``schema``;
    fit it on the train rows only (:func:`fit_pipeline` does, with ``drop_rows_over``)."""
    cfg = resolve_config(config)
    _check_names(schema, cfg)
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


# --- the per-column plan -------------------------------------------------------------------------


def _skew(values: np.ndarray) -> float:
    present = values[~np.isnan(values)]
    if len(present) < 3 or present.std() == 0:
        return 0.0
    centred = present - present.mean()
    return float((centred**3).mean() / present.std() ** 3)


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
        kept = self._select(matrix[:, :numeric], y, names[:numeric], cfg)
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
        missing = {
            c: float((X[c] == MISSING_TEXT).mean())
            if kind[c] in ("categorical", "text")
            else float(X[c].isna().mean())
            for c in columns
        }
        limit = cfg["missing"]["drop_columns_over"]
        kept = []
        for c in columns:
            if missing[c] >= 1.0:
                self.reasons_.append(reason("drop_column", c, "no value in the train rows"))
            elif limit is not None and missing[c] > float(limit):
                self.reasons_.append(
                    reason(
                        "drop_column",
                        c,
                        f"{missing[c]:.0%} missing in train (over missing.drop_columns_over={limit})",
                    )
                )
            else:
                kept.append(c)
        self.missing_ = {c: missing[c] for c in kept}
        numeric = [c for c in kept if kind[c] == "numeric"]
        booleans = [c for c in kept if kind[c] == "boolean"]
        categorical = [c for c in kept if kind[c] in ("categorical", "text")]
        table_numeric = [c for c in numeric if c in (self.kinds or {})]
        branches: list[tuple[str, Any, list[str]]] = []

        bucket_cols = [c for c in cfg["bucket"]["columns"] if c in numeric]
        if cfg["bucket"]["replace"]:
            numeric = [c for c in numeric if c not in bucket_cols]
        outlier_cols = [c for c in (cfg["outliers"]["columns"] or table_numeric) if c in numeric]
        handle, rule, factor = (cfg["outliers"][k] for k in ("handle", "rule", "factor"))

        # numeric columns: one branch per transform, [clip] -> impute -> [transform] -> [scale]
        self.transform_choice_: dict[str, tuple[str, str]] = {}
        for c in numeric:
            self.transform_choice_[c] = self._transform_for(c, X[c].to_numpy(float), cfg)
        clip_note = handle == "clip"
        for choice in CHOICES["transform.default"]:
            for clipped in (True, False):
                cols = [
                    c
                    for c in numeric
                    if self.transform_choice_[c][0] == choice
                    and (c in outlier_cols and clip_note) == clipped
                ]
                if not cols:
                    continue
                # Clip first: its bounds come from the observed values (NaN passes through).
                steps: list[tuple[str, Any]] = []
                if clipped:
                    steps.append(("clip", Clip(rule, float(factor))))
                steps.append(("impute", self._numeric_imputer(cfg)))
                if choice in ("log", "sqrt"):
                    steps.append(("transform", Shift(choice)))
                elif choice in ("yeo-johnson", "box-cox"):
                    steps.append(("transform", PowerTransformer(method=choice, standardize=False)))
                if cfg["scale"] == "standard":
                    steps.append(("scale", StandardScaler()))
                elif cfg["scale"] == "minmax":
                    steps.append(("scale", MinMaxScaler()))
                name = f"numeric_{choice}" + ("_clipped" if clipped else "")
                branches.append((name, Pipeline(steps), cols))
        if bucket_cols:
            bins = KBinsDiscretizer(
                n_bins=int(cfg["bucket"]["bins"]),
                encode="onehot-dense",
                strategy=cfg["bucket"]["strategy"],
                quantile_method="averaged_inverted_cdf",
                subsample=None,
            )
            branches.append(
                (
                    "bucket",
                    Pipeline([("impute", self._numeric_imputer(cfg)), ("bins", bins)]),
                    bucket_cols,
                )
            )
        flagged, self.flag_names_ = self._flagged(numeric + booleans)
        if cfg["missing"]["indicator"] and flagged:
            branches.append(("missing", MissingFlags(self.flag_names_), flagged))
        if handle == "flag" and outlier_cols:
            # On the observed values: a missing value is not an outlier (its flag is 0).
            branches.append(("outliers", OutlierFlags(rule, float(factor)), outlier_cols))
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
        fill = self._category_fill(cfg)
        for encode in ("onehot", "ordinal", "target", "embedding"):
            cols = [c for c in categorical if encodes[c] == encode]
            if not cols:
                continue
            imputer = SimpleImputer(
                missing_values=MISSING_TEXT,
                strategy=cfg["missing"]["categorical"],
                fill_value=MISSING_CATEGORY,
                keep_empty_features=True,
            )
            categories = [self._categories(X[c], fill, cfg, encode) for c in cols]
            if encode == "onehot":
                encoder: Any = OneHotEncoder(
                    categories=categories, handle_unknown="ignore", sparse_output=False
                )
            elif encode == "ordinal":
                encoder = OrdinalEncoder(
                    categories=categories, handle_unknown="use_encoded_value", unknown_value=-1
                )
            elif encode == "target":
                if y is None:
                    raise UserError(f"{KEY}.categorical.encode=target needs the target values")
                folds = StratifiedKFold if self._target_type() != "continuous" else KFold
                encoder = TargetEncoder(
                    target_type=self._target_type(),
                    cv=folds(5, shuffle=True, random_state=int(cfg["seed"])),
                )
            else:
                encoder = CategoryCodes(min_frequency=int(cfg["categorical"]["min_frequency"]))
            branches.append((encode, Pipeline([("impute", imputer), ("encode", encoder)]), cols))
        if not branches:
            raise UserError(
                f"{KEY}: every feature column was dropped (see the reasons in pipeline.json); "
                "loosen missing.drop_columns_over"
            )
        return ColumnTransformer(
            branches, remainder="drop", sparse_threshold=0, verbose_feature_names_out=False
        )

    def _flagged(self, columns: list[str]) -> tuple[list[str], list[str]]:
        """The columns missing in train that get an indicator, and the indicators' names: a
        date column's parts are missing together, so only its first part is flagged, as
        ``<date column>_missing``."""
        dates = [c for c, k in (self.kinds or {}).items() if k == "datetime"]
        flagged, names, seen = [], [], set()
        for c in columns:
            if self.missing_[c] <= 0:
                continue
            source = next(
                (d for d in dates if c not in (self.kinds or {}) and c.startswith(f"{d}_")), c
            )
            if source in seen:
                continue
            seen.add(source)
            flagged.append(c)
            names.append(f"{source}_missing")
        return flagged, names

    def _target_type(self) -> str:
        if self.task == "regression":
            return "continuous"
        return "binary" if self.num_classes <= 2 else "multiclass"

    @staticmethod
    def _numeric_imputer(cfg: dict[str, Any]) -> SimpleImputer:
        return SimpleImputer(
            strategy=cfg["missing"]["numeric"],
            fill_value=float(cfg["missing"]["fill_value"]),
            keep_empty_features=True,
        )

    @staticmethod
    def _category_fill(cfg: dict[str, Any]) -> str | None:
        return MISSING_CATEGORY if cfg["missing"]["categorical"] == "constant" else None

    @staticmethod
    def _categories(
        values: pd.Series, fill: str | None, cfg: dict[str, Any], encode: str
    ) -> list[str]:
        """The categories an encoder keeps, from the train values as imputation leaves them."""
        text = values.astype(str)
        present = text[text != MISSING_TEXT]
        filler = fill if fill is not None else (present.mode().iloc[0] if len(present) else "")
        counts = text.replace({MISSING_TEXT: filler}).value_counts()
        counts = counts[counts >= int(cfg["categorical"]["min_frequency"])]
        ordered = [k for k, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        if encode == "onehot":
            ordered = ordered[: int(cfg["categorical"]["max_categories"])]
        return sorted(ordered) or [filler]

    def _transform_for(
        self, column: str, values: np.ndarray, cfg: dict[str, Any]
    ) -> tuple[str, str]:
        """The transform of a numeric column and why."""
        given = cfg["transform"]["columns"].get(column)
        aggregates = {
            f"{spec['column']}_{stat}_by_{spec['by']}"
            for spec in cfg["aggregates"]
            for stat in spec["stats"]
        }
        table_column = column in (self.kinds or {}) or column in aggregates
        choice = given or (cfg["transform"]["default"] if table_column else "none")
        present = values[~np.isnan(values)]
        low = float(present.min()) if len(present) else 0.0
        skew = _skew(values)
        where = f"transform.columns.{column}" if given else "transform.default"
        if choice == "auto":
            if abs(skew) <= SKEWED:
                return "none", f"skew {skew:.2f} within +/-{SKEWED:g}: left as is"
            if low >= 0:
                return "log", f"skew {skew:.2f}, no negative values: log1p"
            return "yeo-johnson", f"skew {skew:.2f}, negative values: Yeo-Johnson"
        if choice == "box-cox" and low <= 0:
            return "yeo-johnson", (
                f"box-cox needs positive values (train minimum {low:.4g}): Yeo-Johnson instead"
            )
        return choice, f"{where}={choice} (skew {skew:.2f})"

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
            for step_name, step in steps.items():
                self.reasons_ += self._reasons_of(name, step_name, step, list(cols))

    def _reasons_of(
        self, branch: str, name: str, step: Any, cols: list[str]
    ) -> list[dict[str, str]]:
        out = []
        if isinstance(step, SimpleImputer):
            if branch == "boolean":
                label = "most frequent"
            else:
                label = step.strategy.replace("_", " ")
            for j, c in enumerate(cols):
                share = self.missing_.get(c, 0.0)
                if share > 0:
                    value = step.statistics_[j]
                    shown = (
                        f"{value:.4g}" if isinstance(value, float | np.floating) else f"'{value}'"
                    )
                    out.append(
                        reason("impute", c, f"{label} {shown} ({share:.1%} missing in train)")
                    )
        elif isinstance(step, MissingFlags):
            for c, flag in zip(cols, step.names or cols, strict=True):
                share = self.missing_[c]
                out.append(reason("missing_indicator", flag, f"{share:.1%} missing in train"))
        elif isinstance(step, Clip):
            for j, c in enumerate(cols):
                out.append(
                    reason(
                        "clip",
                        c,
                        f"to [{step.lower_[j]:.4g}, {step.upper_[j]:.4g}] ({step.rule}, factor "
                        f"{step.factor:g}); {int(step.outside_[j])} train value(s) outside",
                    )
                )
        elif isinstance(step, OutlierFlags):
            for j, c in enumerate(cols):
                n = int(step.outside_[j])
                text = (
                    f"1 outside [{step.lower_[j]:.4g}, {step.upper_[j]:.4g}] ({step.rule}); {n} in train"
                    if j in step.keep_
                    else f"no train value outside [{step.lower_[j]:.4g}, {step.upper_[j]:.4g}]: no flag"
                )
                out.append(reason("outlier_flag", c, text))
        elif isinstance(step, Shift | PowerTransformer):
            for j, c in enumerate(cols):
                why = self.transform_choice_[c][1]
                if isinstance(step, PowerTransformer):
                    why += f"; lambda {step.lambdas_[j]:.4g}"
                elif step.shift_[j] != 0:
                    why += f"; shifted by the train minimum {step.shift_[j]:.4g}"
                out.append(reason("transform", c, why))
        elif isinstance(step, StandardScaler | MinMaxScaler):
            what = (
                "standard: (x - mean) / std"
                if isinstance(step, StandardScaler)
                else "min-max to [0, 1]"
            )
            for c in cols:
                out.append(reason("scale", c, f"{what}, fitted on train"))
        elif isinstance(step, KBinsDiscretizer):
            for j, c in enumerate(cols):
                out.append(
                    reason("bucket", c, f"{int(step.n_bins_[j])} {step.strategy} bins, one-hot")
                )
        elif isinstance(step, OneHotEncoder):
            for j, c in enumerate(cols):
                n = len(step.categories_[j])
                out.append(reason("encode", c, f"one-hot, {n} categories (others: all zeros)"))
        elif isinstance(step, OrdinalEncoder):
            for j, c in enumerate(cols):
                n = len(step.categories_[j])
                out.append(reason("encode", c, f"ordinal codes 0..{n - 1} (unseen: -1)"))
        elif isinstance(step, TargetEncoder):
            for c in cols:
                out.append(
                    reason(
                        "encode",
                        c,
                        "target encoding, cross-fitted on train (5 folds) so a row's "
                        "own target never encodes it",
                    )
                )
        elif isinstance(step, CategoryCodes):
            for j, c in enumerate(cols):
                n = len(step.categories_[j])
                out.append(
                    reason("encode", c, f"embedding codes 1..{n} (0: missing, rare or unseen)")
                )
        return out

    # --- feature selection --------------------------------------------------------------------

    def _select(
        self, matrix: np.ndarray, y: Any, names: list[str], cfg: dict[str, Any]
    ) -> list[int]:
        """The numeric output columns to keep; each one dropped gets its reason."""
        sel = cfg["select"]
        keep = list(range(matrix.shape[1]))

        def drop(j: int, why: str) -> None:
            keep.remove(j)
            self.reasons_.append(reason("select", names[j], why))

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
        if sel["correlated"] is not None and len(keep) > 1:
            with np.errstate(invalid="ignore", divide="ignore"):
                corr = np.corrcoef(matrix[:, keep], rowvar=False)
            order = list(keep)
            for a in range(len(order)):
                for b in range(a + 1, len(order)):
                    i, j = order[a], order[b]
                    r = corr[a, b]
                    if (
                        i in keep
                        and j in keep
                        and np.isfinite(r)
                        and abs(r) > float(sel["correlated"])
                    ):
                        drop(
                            j,
                            f"correlation {r:.3f} with '{names[i]}' (select.correlated="
                            f"{sel['correlated']})",
                        )
        k = sel["mutual_info_top_k"]
        if k is not None and y is not None and len(keep) > int(k):
            from sklearn.feature_selection import mutual_info_classif, mutual_info_regression

            score = mutual_info_regression if self.task == "regression" else mutual_info_classif
            info = score(matrix[:, keep], np.asarray(y), random_state=int(cfg["seed"]))
            ranked = sorted(zip(info, keep, strict=True), key=lambda t: (-t[0], t[1]))
            for rank, (value, j) in enumerate(ranked, start=1):
                if rank > int(k):
                    drop(
                        j,
                        f"mutual information {value:.4f} ranks {rank} of {len(ranked)} "
                        f"(select.mutual_info_top_k={k})",
                    )
        return sorted(keep)


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


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseEstimator):
        return learned_params(value)
    if isinstance(value, np.ndarray):
        return (
            [_jsonable(v) for v in value.tolist()]
            if value.dtype == object
            else _jsonable(value.tolist())
        )
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str | int | bool) or value is None:
        return value
    return repr(value)


def learned_params(estimator: Any) -> dict[str, Any]:
    """What a fitted estimator learned, as JSON: its type, its parameters and every fitted
    attribute (``name_``), nested steps included."""
    kind = type(estimator)
    out: dict[str, Any] = {"type": f"{kind.__module__}.{kind.__qualname__}"}
    if isinstance(estimator, Pipeline):
        out["steps"] = {name: learned_params(step) for name, step in estimator.steps}
        return out
    if isinstance(estimator, ColumnTransformer):
        out["transformers"] = [
            {"name": name, "columns": [str(c) for c in cols], "fitted": learned_params(step)}
            for name, step, cols in estimator.transformers_
            if not isinstance(step, str)
        ]
        return out
    params = estimator.get_params(deep=False)
    out["params"] = {k: _jsonable(v) for k, v in params.items() if k != "config"}
    for name, value in vars(estimator).items():
        if name.endswith("_") and not name.startswith("_") and name != "reasons_":
            out[name] = _jsonable(value)
    return out


def compare_params(saved: Any, fitted: Any, path: str = "", rtol: float = 1e-6) -> list[str]:
    """Where two ``learned_params`` dicts differ (numbers within ``rtol`` are equal)."""
    if isinstance(saved, dict) and isinstance(fitted, dict):
        out = []
        for key in sorted(set(saved) | set(fitted)):
            if key not in saved or key not in fitted:
                out.append(f"{path}.{key}".lstrip("."))
            else:
                out += compare_params(saved[key], fitted[key], f"{path}.{key}", rtol)
        return out
    if isinstance(saved, list) and isinstance(fitted, list):
        if len(saved) != len(fitted):
            return [path.lstrip(".")]
        out = []
        for i, (a, b) in enumerate(zip(saved, fitted, strict=True)):
            out += compare_params(a, b, f"{path}[{i}]", rtol)
        return out[:1]
    numbers = (int, float)
    if isinstance(saved, numbers) and isinstance(fitted, numbers) and not isinstance(saved, bool):
        same = math.isclose(saved, fitted, rel_tol=rtol, abs_tol=1e-12)
        return [] if same else [path.lstrip(".")]
    return [] if saved == fitted else [path.lstrip(".")]


__all__ = [
    "CUSTOM_STEPS",
    "CYCLES",
    "DEFAULTS",
    "ColumnPlan",
    "build_pipeline",
    "compare_params",
    "describe_features",
    "fit_pipeline",
    "learned_params",
    "resolve_config",
]
