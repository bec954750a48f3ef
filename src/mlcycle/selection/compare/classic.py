"""A classic candidate's fold: a scikit-learn estimator (after optional standardization and
PCA) fitted on the fold's training rows of resized pixels or of a deep model's embeddings."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mlcycle.core.errors import UserError
from mlcycle.core.imports import import_object
from mlcycle.selection.compare.spec import Candidate
from mlcycle.selection.measure import latency_ms, learned_numbers, pickled_mb

# Defaults that make the classic models give probabilities and converge on pixels.
DEFAULTS: dict[str, dict[str, Any]] = {
    "sklearn.svm.SVC": {"probability": True},
    "sklearn.linear_model.LogisticRegression": {"max_iter": 1000},
}


def build_estimator(candidate: Candidate, seed: int) -> Pipeline:
    """The candidate's pipeline: [standardize] -> [PCA] -> estimator."""
    cls = import_object(candidate.estimator, f"candidate '{candidate.name}': estimator")
    params = {**DEFAULTS.get(candidate.estimator, {}), **candidate.params}
    if "random_state" in cls().get_params() and "random_state" not in params:
        params["random_state"] = seed
    try:
        estimator = cls(**params)
    except TypeError as exc:
        raise UserError(f"candidate '{candidate.name}': {exc}") from exc
    steps: list[tuple[str, Any]] = []
    if candidate.scale:
        steps.append(("scale", StandardScaler()))
    if candidate.pca:
        steps.append(("pca", PCA(n_components=candidate.pca, random_state=seed)))
    steps.append(("model", estimator))
    return Pipeline(steps)


def probabilities(model: Any, features: np.ndarray, num_classes: int) -> np.ndarray:
    """Class probabilities in class-index order (a softmax of decision scores for estimators
    without ``predict_proba``)."""
    if hasattr(model, "predict_proba"):
        scores = model.predict_proba(features)
    else:
        raw = model.decision_function(features)
        raw = np.stack([-raw, raw], axis=1) if raw.ndim == 1 else raw
        raw = raw - raw.max(axis=1, keepdims=True)
        scores = np.exp(raw) / np.exp(raw).sum(axis=1, keepdims=True)
    out = np.zeros((len(features), num_classes), dtype=np.float32)
    out[:, np.asarray(model.classes_, dtype=int)] = scores
    return out


def run_fold(
    candidate: Candidate,
    features: np.ndarray,
    target: np.ndarray,
    train_rows: np.ndarray,
    fold_rows: np.ndarray,
    num_classes: int,
    seed: int,
    to_features: Callable[[np.ndarray], np.ndarray],
    images: np.ndarray,
) -> dict[str, Any]:
    """Fit on ``train_rows``, predict ``fold_rows``; time ``to_features`` + the model on
    ``images`` (uint8) for the latency, as the deep candidates are timed."""
    model = clone(build_estimator(candidate, seed))
    clock = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter; the score says enough
        model.fit(features[train_rows], target[train_rows])
    fit_s = time.perf_counter() - clock
    probs = probabilities(model, features[fold_rows], num_classes)
    if "model__n_jobs" in model.get_params():
        model.set_params(model__n_jobs=1)  # latency is measured on one thread for every family
    return {
        "rows": fold_rows,
        "probs": probs,
        "fit_s": round(fit_s, 2),
        "latency_ms": latency_ms(
            lambda batch: probabilities(model, to_features(batch), num_classes), images
        ),
        "params": learned_numbers(model),
        "size_mb": pickled_mb(model),
        "model": model,
    }
