"""How an ensemble combines its members' class probabilities, and how that is fit.

Every function takes ``probs``: the members' probabilities, shape (M members, N images, C
classes), all on the same images in the same order, and ``target`` (N,) class indices.

* ``soft``: the mean of the members' probabilities; nothing is fit.
* ``weighted``: non-negative weights summing to 1 (a softmax of free parameters) that
  minimise the log loss of the weighted mean probabilities (scipy L-BFGS).
* ``stacking``: a multinomial logistic regression on the members' probabilities side by side.

A fitted method scored on the rows it was fit on flatters itself; :func:`cross_fitted` fits on
all folds but one and predicts that one, so its score is honest.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mlcycle.core.errors import UserError

METHODS = ("soft", "weighted", "stacking")
EPS = 1e-12
ABSENT_LOGIT = -30.0  # stacking: a class absent from the fitted rows is (almost) never predicted
STACKING_C = 1.0  # sklearn's default regularization; the features are probabilities in 0..1


@dataclass
class Combination:
    """A fitted combination, in plain types (it goes into the checkpoint's hyperparameters)."""

    method: str
    weights: list[float] | None = None  # soft, weighted: one per member, >= 0, sum 1
    coef: list[list[float]] | None = None  # stacking: (C, M*C) over the concatenated probs
    intercept: list[float] | None = None  # stacking: (C,)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def check_method(method: str) -> None:
    if method not in METHODS:
        raise UserError(f"--method {method} is not one of {', '.join(METHODS)} or all")


def soft(members: int) -> Combination:
    return Combination("soft", weights=[1.0 / members] * members)


def _softmax(theta: np.ndarray) -> np.ndarray:
    z = np.exp(theta - theta.max())
    return z / z.sum()


def fit_weighted(probs: np.ndarray, target: np.ndarray) -> Combination:
    """The weights minimising the log loss of ``sum_m w_m probs[m]`` (w = softmax(theta))."""
    from scipy.optimize import minimize

    members = probs.shape[0]
    if members == 1:
        return Combination("weighted", weights=[1.0])
    # only the probability of the true class matters to the log loss: (N, M)
    true = np.clip(probs[:, np.arange(len(target)), target].T.astype(np.float64), EPS, 1)
    ridge = 1e-6  # keeps theta finite when one member is better everywhere

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w = _softmax(theta)
        mixed = true @ w
        value = -np.log(mixed).mean() + ridge * theta @ theta
        grad_w = -(true / mixed[:, None]).mean(axis=0)
        return value, w * (grad_w - w @ grad_w) + 2 * ridge * theta

    found = minimize(loss, np.zeros(members), jac=True, method="L-BFGS-B")
    weights = _softmax(found.x)
    return Combination("weighted", weights=[float(w) for w in weights / weights.sum()])


def features(probs: np.ndarray) -> np.ndarray:
    """The stacking features: every member's probabilities side by side, (N, M*C)."""
    members, rows, classes = probs.shape
    return probs.transpose(1, 0, 2).reshape(rows, members * classes).astype(np.float64)


def fit_stacking(probs: np.ndarray, target: np.ndarray, num_classes: int) -> Combination:
    """A logistic regression meta-model, written as one (C, M*C) linear layer over all
    ``num_classes`` classes (those absent from ``target`` get ``ABSENT_LOGIT``)."""
    from sklearn.linear_model import LogisticRegression

    x = features(probs)
    coef = np.zeros((num_classes, x.shape[1]))
    intercept = np.full(num_classes, ABSENT_LOGIT)
    seen = np.unique(target)
    if len(seen) < 2:  # nothing to discriminate (a tiny fold): predict the one class seen
        intercept[seen] = 0.0
        return _stacking(coef, intercept)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence notices on tiny data
        model = LogisticRegression(C=STACKING_C, max_iter=2000).fit(x, target)
    classes = model.classes_.astype(int)
    if len(classes) == 2:  # sklearn keeps one row for two classes: softmax([0, z]) = sigmoid(z)
        coef[classes[1]], intercept[classes[1]] = model.coef_[0], model.intercept_[0]
        intercept[classes[0]] = 0.0
    else:
        coef[classes], intercept[classes] = model.coef_, model.intercept_
    return _stacking(coef, intercept)


def _stacking(coef: np.ndarray, intercept: np.ndarray) -> Combination:
    return Combination(
        "stacking",
        coef=[[float(v) for v in row] for row in coef],
        intercept=[float(v) for v in intercept],
    )


def fit(method: str, probs: np.ndarray, target: np.ndarray, num_classes: int) -> Combination:
    check_method(method)
    if method == "soft":
        return soft(probs.shape[0])
    if method == "weighted":
        return fit_weighted(probs, target)
    return fit_stacking(probs, target, num_classes)


def apply(combination: Combination, probs: np.ndarray) -> np.ndarray:
    """The ensemble's probabilities (N, C), as the ensemble's graph computes them."""
    if combination.method == "stacking":
        logits = features(probs) @ np.asarray(combination.coef).T + combination.intercept
        z = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)
    weights = np.asarray(combination.weights, dtype=np.float64)
    return np.tensordot(weights, probs.astype(np.float64), axes=1).astype(np.float32)


def cross_fitted(
    method: str, probs: np.ndarray, target: np.ndarray, folds: np.ndarray, num_classes: int
) -> np.ndarray:
    """Each fold's probabilities from the combination fit on the other folds."""
    out = np.zeros(probs.shape[1:], dtype=np.float32)
    for fold in np.unique(folds):
        held = folds == fold
        combination = fit(method, probs[:, ~held], target[~held], num_classes)
        out[held] = apply(combination, probs[:, held])
    return out


def stratified_folds(target: np.ndarray, folds: int = 5) -> np.ndarray:
    """A deterministic fold per row: each class's rows dealt to the folds in turn (fewer folds
    when there are few rows), to cross-fit a combination on one validation split."""
    count = int(min(folds, max(2, len(target) // 2)))
    out = np.zeros(len(target), dtype=np.int64)
    for cls in np.unique(target):
        rows = np.flatnonzero(target == cls)
        out[rows] = np.arange(len(rows)) % count
    return out


# --- predicted values (regression) --------------------------------------------------------
VALUE_METHODS = ("soft", "weighted", "stacking")
RIDGE_ALPHAS = tuple(10.0**k for k in range(-3, 4))
GREEDY_ROUNDS = 25  # ensemble selection's picks (AutoGluon's weighted ensemble takes 25)


def fit_values(method: str, values: np.ndarray, target: np.ndarray) -> Combination:
    """``soft``: the mean of the members' predictions ``values`` (M, N); ``weighted``: greedy
    ensemble selection with replacement (:func:`greedy_weights`); ``stacking``: a ridge
    regression on them side by side (its penalty chosen by leave-one-out), written as one
    (1, M) linear layer."""
    if method not in VALUE_METHODS:
        raise UserError(
            f"--method {method}: a regression ensemble is the mean (soft), greedy weights "
            "(weighted) or a ridge stack (stacking)"
        )
    if method == "soft":
        return soft(values.shape[0])
    if method == "weighted":
        return Combination("weighted", weights=greedy_weights(values, target))
    from sklearn.linear_model import RidgeCV

    model = RidgeCV(alphas=RIDGE_ALPHAS).fit(values.T.astype(np.float64), target)
    return _stacking(np.asarray(model.coef_)[None, :], np.asarray([model.intercept_]))


def greedy_weights(
    values: np.ndarray, target: np.ndarray, rounds: int = GREEDY_ROUNDS
) -> list[float]:
    """Ensemble selection (Caruana et al., 2004), as AutoGluon's weighted ensemble: ``rounds``
    times, add the member (again, if it is the best) whose addition to the running mean
    lowers the squared error most; each weight is the member's share of the picks."""
    values = values.astype(np.float64)
    target = np.asarray(target, dtype=np.float64)
    counts = np.zeros(values.shape[0])
    total = np.zeros(values.shape[1])
    for k in range(1, rounds + 1):
        errors = (((total[None, :] + values) / k - target[None, :]) ** 2).mean(axis=1)
        pick = int(np.argmin(errors))  # ties: the first member (the leaderboard's order)
        counts[pick] += 1
        total += values[pick]
    return (counts / counts.sum()).tolist()


def apply_values(combination: Combination, values: np.ndarray) -> np.ndarray:
    """The ensemble's predictions (N,) from the members' (M, N)."""
    values = values.astype(np.float64)
    if combination.method == "stacking":
        coef = np.asarray(combination.coef, dtype=np.float64)[0]
        return (values.T @ coef + combination.intercept[0]).astype(np.float32)
    weights = np.asarray(combination.weights, dtype=np.float64)
    return np.tensordot(weights, values, axes=1).astype(np.float32)


def cross_fitted_values(
    method: str, values: np.ndarray, target: np.ndarray, folds: np.ndarray
) -> np.ndarray:
    """Each fold's predictions from the combination fit on the other folds."""
    out = np.zeros(values.shape[1], dtype=np.float32)
    for fold in np.unique(folds):
        held = folds == fold
        out[held] = apply_values(
            fit_values(method, values[:, ~held], target[~held]), values[:, held]
        )
    return out
