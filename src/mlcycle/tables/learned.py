"""What a fitted estimator learned, as JSON (:func:`learned_params`: ``pipeline.json``'s
``learned``), and where two such records differ (:func:`compare_params`): a run's pipeline,
rebuilt from its config, schema and train rows, is checked against it; no pickle is loaded."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline


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
