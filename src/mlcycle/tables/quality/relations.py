"""How a table's columns relate: Pearson and Spearman between numeric columns, Cramer's V between
categorical ones, each feature's association with the target, and how well each feature alone
predicts the target under cross-validation (a score near 1 is a leak)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

CATEGORICAL = ("categorical", "boolean")
LEAK_ROWS = 5000  # rows the single-feature models see at most (a random sample)
FOLDS = 5


def _labels(series: pd.Series) -> pd.Series:
    """A categorical column as the strings training names its values by (``1.0`` -> ``"1"``),
    missing values as a category of their own."""
    from mlcycle.tables.schema import label_texts

    return label_texts(series).fillna("(missing)").astype(str)


def cramers_v(a: pd.Series, b: pd.Series) -> float:
    """Association of two categorical columns, 0..1: Cramer's V with Bergsma's bias correction,
    so that a column of many rare values does not look associated with everything."""
    table = pd.crosstab(_labels(a), _labels(b)).to_numpy(dtype=float)
    r, k = table.shape
    n = table.sum()
    if min(r, k) < 2 or n < 2:
        return 0.0
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / n
    phi2 = float(((table - expected) ** 2 / expected).sum()) / n
    phi2 = max(0.0, phi2 - (k - 1) * (r - 1) / (n - 1))
    r_, k_ = r - (r - 1) ** 2 / (n - 1), k - (k - 1) ** 2 / (n - 1)
    if min(r_, k_) <= 1:
        return 0.0
    return min(1.0, math.sqrt(phi2 / (min(r_, k_) - 1)))


def correlation_ratio(values: np.ndarray, groups: pd.Series) -> float:
    """eta: the share of a numeric column's spread explained by a categorical one (square root)."""
    ok = np.isfinite(values)
    x, g = values[ok], _labels(groups)[ok]
    total = float(((x - x.mean()) ** 2).sum()) if len(x) else 0.0
    if total == 0:
        return 0.0
    frame = pd.DataFrame({"x": x, "g": g.to_numpy()})
    stats = frame.groupby("g")["x"].agg(["count", "mean"])
    between = float((stats["count"] * (stats["mean"] - x.mean()) ** 2).sum())
    return math.sqrt(between / total)


def _matrix(frame: pd.DataFrame) -> dict[str, Any]:
    return {
        "names": [str(c) for c in frame.columns],
        "values": [
            [None if pd.isna(v) else round(float(v), 3) for v in row] for row in frame.to_numpy()
        ],
    }


def correlations(
    numeric: dict[str, np.ndarray], categorical: dict[str, pd.Series]
) -> dict[str, Any]:
    """``pearson`` and ``spearman`` of the numeric columns, ``cramers_v`` of the categorical ones
    (each ``{names, values}``; None where a column is constant)."""
    frame = pd.DataFrame(numeric)
    out: dict[str, Any] = {
        "pearson": _matrix(frame.corr("pearson", min_periods=3)) if len(numeric) > 1 else None,
        "spearman": _matrix(frame.corr("spearman", min_periods=3)) if len(numeric) > 1 else None,
        "cramers_v": None,
    }
    names = list(categorical)
    if len(names) > 1:
        v = np.eye(len(names))
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                v[i, j] = v[j, i] = cramers_v(categorical[names[i]], categorical[names[j]])
        out["cramers_v"] = _matrix(pd.DataFrame(v, index=names, columns=names))
    return out


def strong_pairs(corr: dict[str, Any], limit: float = 0.9) -> list[dict[str, Any]]:
    """Pairs of columns whose |correlation| (or Cramer's V) is at least ``limit``."""
    found = []
    for measure in ("pearson", "spearman", "cramers_v"):
        m = corr.get(measure)
        if not m:
            continue
        names = m["names"]
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                value = m["values"][i][j]
                if value is not None and abs(value) >= limit:
                    found.append({"a": names[i], "b": names[j], "measure": measure, "value": value})
    return found


def target_association(
    feature: pd.Series, values: np.ndarray | None, target: pd.Series, task: str
) -> tuple[float | None, str]:
    """0 (unrelated) .. 1 (determines the target), and how it was measured."""
    if task == "classification":
        if values is not None:
            return correlation_ratio(values, target), "correlation ratio"
        return cramers_v(feature, target), "Cramer's V"
    y = pd.to_numeric(target, errors="coerce").to_numpy(dtype=float)
    if values is not None:
        ok = np.isfinite(values) & np.isfinite(y)
        if ok.sum() < 3 or np.ptp(values[ok]) == 0 or np.ptp(y[ok]) == 0:
            return None, "|Spearman|"
        rho = pd.Series(values[ok]).corr(pd.Series(y[ok]), method="spearman")
        return abs(float(rho)), "|Spearman|"
    return correlation_ratio(y, feature), "correlation ratio"


def _encode_number(values: np.ndarray) -> np.ndarray:
    """Missing values below every number, so that a tree can split on missingness too."""
    ok = np.isfinite(values)
    low = values[ok].min() - 1 if ok.any() else 0.0
    return np.where(ok, values, low).reshape(-1, 1)


def _folds(y: np.ndarray, task: str, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import KFold, StratifiedKFold

    if task == "classification":
        smallest = int(np.unique(y, return_counts=True)[1].min())
        if smallest >= 2:
            splitter = StratifiedKFold(min(FOLDS, smallest), shuffle=True, random_state=seed)
            return list(splitter.split(np.zeros(len(y)), y))
    return list(KFold(FOLDS, shuffle=True, random_state=seed).split(np.zeros(len(y))))


def _lookup(train: pd.Series, y_train: np.ndarray, test: pd.Series, task: str) -> np.ndarray:
    """A category's majority class (or mean target), learnt on train; unseen: the overall one."""
    frame = pd.DataFrame({"c": train.to_numpy(), "y": y_train})
    if task == "classification":
        table = frame.groupby("c")["y"].agg(lambda s: s.value_counts().index[0])
        fallback = pd.Series(y_train).value_counts().index[0]
    else:
        table = frame.groupby("c")["y"].mean()
        fallback = float(np.mean(y_train))
    return test.map(table).fillna(fallback).to_numpy(dtype=y_train.dtype)


def single_feature_score(
    feature: pd.Series, values: np.ndarray | None, y: np.ndarray, task: str, seed: int = 0
) -> float:
    """Out-of-fold balanced accuracy (classification) or R^2 (regression) of this feature alone:
    a shallow tree on a number (for regression the better of the tree and a straight line, so
    that a rescaled copy of the target scores 1 on a small table too), the majority class (mean)
    per category otherwise."""
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import balanced_accuracy_score, r2_score
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    labels = _labels(feature).reset_index(drop=True)
    x = _encode_number(values) if values is not None else None
    if task == "classification":
        models = [DecisionTreeClassifier(max_depth=6, min_samples_leaf=2, random_state=seed)]
    else:
        models = [
            DecisionTreeRegressor(max_depth=8, min_samples_leaf=2, random_state=seed),
            LinearRegression(),
        ]
    scores = []
    for model in models if x is not None else [None]:
        predicted = np.empty_like(y)
        for train, test in _folds(y, task, seed):
            if model is None:
                predicted[test] = _lookup(labels.iloc[train], y[train], labels.iloc[test], task)
            else:
                predicted[test] = model.fit(x[train], y[train]).predict(x[test])
        if task == "classification":
            scores.append(float(balanced_accuracy_score(y, predicted)))
        else:
            scores.append(float(r2_score(y, predicted)))
    return max(scores)


def leakage_scores(
    features: dict[str, tuple[pd.Series, np.ndarray | None]],
    target: pd.Series,
    task: str,
    seed: int = 0,
) -> dict[str, float]:
    """:func:`single_feature_score` of each feature (on up to LEAK_ROWS rows with a target)."""
    keep = target.notna().to_numpy().copy()
    if task == "regression":
        y_all = pd.to_numeric(target, errors="coerce").to_numpy(dtype=float)
        keep &= np.isfinite(y_all)
    rows = np.flatnonzero(keep)
    if len(rows) > LEAK_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(rows, LEAK_ROWS, replace=False))
    if len(rows) < 2 * FOLDS:
        return {}
    if task == "classification":
        y = pd.factorize(_labels(target).to_numpy()[rows])[0]
    else:
        y = y_all[rows]
        if np.ptp(y) == 0:
            return {}
    out = {}
    bar = tqdm(
        features.items(), desc="leakage", leave=False, disable=len(rows) * len(features) < 200_000
    )
    for name, (series, values) in bar:
        picked = series.reset_index(drop=True).iloc[rows]
        x = None if values is None else values[rows]
        out[name] = round(single_feature_score(picked, x, y, task, seed), 4)
    return out
