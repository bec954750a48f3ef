"""The branches of :class:`~mlcycle.tables.pipeline.ColumnPlan`'s ``ColumnTransformer``: which
columns get which stock scikit-learn steps, decided on the train rows.

Numeric columns go through ``[clip] -> impute -> [transform] -> [scale]``, one branch per
transform; bucketed columns get bins; missing values and outliers can be flagged; boolean
columns are imputed; categorical columns are imputed and encoded (one-hot, ordinal, target or
embedding codes, those last).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
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
from mlcycle.tables.pipeline_config import CHOICES, KEY
from mlcycle.tables.steps import MISSING_TEXT, CategoryCodes, Clip, Shift, reason

SKEWED = 1.0  # transform: auto treats a column with |skew| above this
MISSING_CATEGORY = "missing"
Branch = tuple[str, Any, list[str]]


def drop_missing_columns(
    X: pd.DataFrame, kind: dict[str, str], cfg: dict[str, Any], reasons: list[dict[str, str]]
) -> tuple[list[str], dict[str, float]]:
    """The columns kept (a column with no value, or missing in more of the train rows than
    ``missing.drop_columns_over``, is dropped with its reason) and each one's missing share."""
    missing = {
        c: float((X[c] == MISSING_TEXT).mean())
        if kind[c] in ("categorical", "text")
        else float(X[c].isna().mean())
        for c in kind
    }
    limit = cfg["missing"]["drop_columns_over"]
    kept = []
    for c in kind:
        if missing[c] >= 1.0:
            reasons.append(reason("drop_column", c, "no value in the train rows"))
        elif limit is not None and missing[c] > float(limit):
            reasons.append(
                reason(
                    "drop_column",
                    c,
                    f"{missing[c]:.0%} missing in train (over missing.drop_columns_over={limit})",
                )
            )
        else:
            kept.append(c)
    return kept, {c: missing[c] for c in kept}


# --- numeric columns -----------------------------------------------------------------------------


def skew(values: np.ndarray) -> float:
    present = values[~np.isnan(values)]
    if len(present) < 3 or present.std() == 0:
        return 0.0
    centred = present - present.mean()
    return float((centred**3).mean() / present.std() ** 3)


def transform_for(
    column: str, values: np.ndarray, cfg: dict[str, Any], kinds: dict[str, str]
) -> tuple[str, str]:
    """The transform of a numeric column and why (``kinds``: the table's feature columns)."""
    given = cfg["transform"]["columns"].get(column)
    aggregates = {
        f"{spec['column']}_{stat}_by_{spec['by']}"
        for spec in cfg["aggregates"]
        for stat in spec["stats"]
    }
    table_column = column in kinds or column in aggregates
    choice = given or (cfg["transform"]["default"] if table_column else "none")
    present = values[~np.isnan(values)]
    low = float(present.min()) if len(present) else 0.0
    skewness = skew(values)
    where = f"transform.columns.{column}" if given else "transform.default"
    if choice == "auto":
        if abs(skewness) <= SKEWED:
            return "none", f"skew {skewness:.2f} within +/-{SKEWED:g}: left as is"
        if low >= 0:
            return "log", f"skew {skewness:.2f}, no negative values: log1p"
        return "yeo-johnson", f"skew {skewness:.2f}, negative values: Yeo-Johnson"
    if choice == "box-cox" and low <= 0:
        return "yeo-johnson", (
            f"box-cox needs positive values (train minimum {low:.4g}): Yeo-Johnson instead"
        )
    return choice, f"{where}={choice} (skew {skewness:.2f})"


def numeric_imputer(cfg: dict[str, Any]) -> SimpleImputer:
    return SimpleImputer(
        strategy=cfg["missing"]["numeric"],
        fill_value=float(cfg["missing"]["fill_value"]),
        keep_empty_features=True,
    )


def _numeric_steps(choice: str, clipped: bool, cfg: dict[str, Any]) -> list[tuple[str, Any]]:
    # Clip first: its bounds come from the observed values (NaN passes through).
    steps: list[tuple[str, Any]] = []
    if clipped:
        steps.append(("clip", Clip(cfg["outliers"]["rule"], float(cfg["outliers"]["factor"]))))
    steps.append(("impute", numeric_imputer(cfg)))
    if choice in ("log", "sqrt"):
        steps.append(("transform", Shift(choice)))
    elif choice in ("yeo-johnson", "box-cox"):
        steps.append(("transform", PowerTransformer(method=choice, standardize=False)))
    if cfg["scale"] == "standard":
        steps.append(("scale", StandardScaler()))
    elif cfg["scale"] == "minmax":
        steps.append(("scale", MinMaxScaler()))
    return steps


def numeric_branches(
    numeric: list[str],
    outlier_cols: list[str],
    choices: dict[str, tuple[str, str]],
    cfg: dict[str, Any],
) -> list[Branch]:
    """One branch per transform (and clipped or not): ``[clip] -> impute -> [transform] ->
    [scale]``; ``choices``: each column's :func:`transform_for`."""
    clip = cfg["outliers"]["handle"] == "clip"
    branches: list[Branch] = []
    for choice in CHOICES["transform.default"]:
        for clipped in (True, False):
            cols = [
                c
                for c in numeric
                if choices[c][0] == choice and (c in outlier_cols and clip) == clipped
            ]
            if not cols:
                continue
            name = f"numeric_{choice}" + ("_clipped" if clipped else "")
            branches.append((name, Pipeline(_numeric_steps(choice, clipped, cfg)), cols))
    return branches


def bucket_branch(columns: list[str], cfg: dict[str, Any]) -> Branch:
    """Numeric columns cut into bins, one-hot."""
    bins = KBinsDiscretizer(
        n_bins=int(cfg["bucket"]["bins"]),
        encode="onehot-dense",
        strategy=cfg["bucket"]["strategy"],
        quantile_method="averaged_inverted_cdf",
        subsample=None,
    )
    return ("bucket", Pipeline([("impute", numeric_imputer(cfg)), ("bins", bins)]), columns)


def flagged_columns(
    columns: list[str], missing: dict[str, float], kinds: dict[str, str]
) -> tuple[list[str], list[str]]:
    """The columns missing in train that get an indicator, and the indicators' names: a
    date column's parts are missing together, so only its first part is flagged, as
    ``<date column>_missing``."""
    dates = [c for c, k in kinds.items() if k == "datetime"]
    flagged, names, seen = [], [], set()
    for c in columns:
        if missing[c] <= 0:
            continue
        source = next((d for d in dates if c not in kinds and c.startswith(f"{d}_")), c)
        if source in seen:
            continue
        seen.add(source)
        flagged.append(c)
        names.append(f"{source}_missing")
    return flagged, names


# --- categorical columns -------------------------------------------------------------------------


def category_fill(cfg: dict[str, Any]) -> str | None:
    return MISSING_CATEGORY if cfg["missing"]["categorical"] == "constant" else None


def categories(values: pd.Series, fill: str | None, cfg: dict[str, Any], encode: str) -> list[str]:
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


def _encoder(encode: str, cats: list[list[str]], cfg: dict[str, Any], target_type: str) -> Any:
    if encode == "onehot":
        return OneHotEncoder(categories=cats, handle_unknown="ignore", sparse_output=False)
    if encode == "ordinal":
        return OrdinalEncoder(categories=cats, handle_unknown="use_encoded_value", unknown_value=-1)
    if encode == "target":
        folds = StratifiedKFold if target_type != "continuous" else KFold
        return TargetEncoder(
            target_type=target_type, cv=folds(5, shuffle=True, random_state=int(cfg["seed"]))
        )
    return CategoryCodes(min_frequency=int(cfg["categorical"]["min_frequency"]))


def categorical_branches(
    X: pd.DataFrame,
    y: Any,
    encodes: dict[str, str],
    cfg: dict[str, Any],
    target_type: str,
) -> list[Branch]:
    """``impute -> encode``, one branch per encoding, embedding codes last; ``encodes``:
    ``{column: encoding}`` of the categorical columns; ``target_type``: for target encoding."""
    fill = category_fill(cfg)
    branches: list[Branch] = []
    for encode in ("onehot", "ordinal", "target", "embedding"):
        cols = [c for c in encodes if encodes[c] == encode]
        if not cols:
            continue
        imputer = SimpleImputer(
            missing_values=MISSING_TEXT,
            strategy=cfg["missing"]["categorical"],
            fill_value=MISSING_CATEGORY,
            keep_empty_features=True,
        )
        cats = [categories(X[c], fill, cfg, encode) for c in cols]
        if encode == "target" and y is None:
            raise UserError(f"{KEY}.categorical.encode=target needs the target values")
        encoder = _encoder(encode, cats, cfg, target_type)
        branches.append((encode, Pipeline([("impute", imputer), ("encode", encoder)]), cols))
    return branches
