"""A power law fitted to the validation error of a learning curve, and what it predicts.

``error(n) = a * n ** -b + c`` (``c``: the error no amount of this data removes), fitted with
``scipy.optimize.curve_fit`` to the mean error over folds at each size. Its uncertainty comes
from a bootstrap over the folds: the folds are drawn with replacement, the means and the fit
recomputed, and a prediction's 95% interval is the 2.5th to 97.5th percentile of the refits'.

The curve is **flat** when the gain expected from twice the data is within the noise of what
was measured: below the standard error, over the folds, of the error at the largest size.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

MIN_SIZES = 3  # a, b and c: three sizes at least
BOOTSTRAPS = 200


def power_law(n: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a * np.power(n, -b) + c


def power_law_jacobian(n: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    """d error / d (a, b, c): exact, so curve_fit needs no finite differences."""
    power = np.power(n, -b)
    return np.stack([power, -a * power * np.log(n), np.ones_like(n)], axis=1)


def fit_power_law(n: np.ndarray, error: np.ndarray) -> tuple[float, float, float] | None:
    """``(a, b, c)`` of the power law through ``(n, error)``; None when it does not converge.

    Fitted on ``n`` relative to its largest value (a well-scaled problem), with ``a, b, c >= 0``,
    ``b <= 3`` and ``c`` no larger than the smallest error; ``a`` is given back in ``n``'s units.
    """
    from scipy.optimize import curve_fit

    n, error = np.asarray(n, float), np.asarray(error, float)
    scale = float(n.max())
    x = n / scale
    floor = float(error.min())
    start = grid_start(x, error, floor)
    bounds = ([0.0, 0.0, 0.0], [np.inf, 3.0, floor + 1e-9])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an exactly determined fit has no covariance
            (a, b, c), _ = curve_fit(
                power_law, x, error, start, jac=power_law_jacobian, bounds=bounds, maxfev=20000
            )
    except (RuntimeError, ValueError):
        return None
    return float(a * scale**b), float(b), float(c)


def grid_start(x: np.ndarray, error: np.ndarray, floor: float) -> list[float]:
    """A start for curve_fit: the best ``b`` of a coarse grid, ``a`` and ``c`` by least squares
    for each (the model is linear in them), kept inside the bounds."""
    best: tuple[float, list[float]] = (np.inf, [1e-6, 0.5, 0.5 * floor])
    for b in np.linspace(0.05, 2.95, 12):
        design = np.stack([x**-b, np.ones_like(x)], axis=1)
        (a, c), *_ = np.linalg.lstsq(design, error, rcond=None)
        a, c = max(float(a), 1e-6), min(max(float(c), 0.0), floor)
        loss = float(np.sum((a * x**-b + c - error) ** 2))
        if loss < best[0]:
            best = (loss, [a, float(b), c])
    return best[1]


@dataclass
class Curve:
    """The fit to the mean errors and the refits of the bootstrap over folds."""

    params: tuple[float, float, float]
    boots: np.ndarray  # (refits, 3)
    n: np.ndarray  # training samples at each size
    noise: float  # standard error over the folds of the error at the largest size

    def error_at(self, n: float) -> float:
        return float(power_law(np.asarray(n, float), *self.params))

    def interval_at(self, n: float) -> tuple[float, float]:
        values = [power_law(np.asarray(n, float), *p) for p in self.boots]
        return percentiles(values, self.error_at(n))

    def gain(self, n: float) -> float:
        """The drop in error from ``n`` samples to twice as many."""
        return self.error_at(n) - self.error_at(2 * n)

    def gain_interval(self, n: float) -> tuple[float, float]:
        values = [power_law(np.asarray(n, float), *p) - power_law(2.0 * n, *p) for p in self.boots]
        return percentiles(values, self.gain(n))

    @property
    def flat(self) -> bool:
        return self.gain(float(self.n.max())) <= self.noise


def percentiles(values: list[float], fallback: float) -> tuple[float, float]:
    if not values:
        return fallback, fallback
    low, high = np.percentile(np.asarray(values, float), [2.5, 97.5])
    return float(low), float(high)


def fit_curve(n: np.ndarray, errors: np.ndarray, seed: int = 0) -> Curve | None:
    """The power law of ``errors`` (sizes x folds; NaN: a fold that failed) against ``n`` (the
    training samples at each size), with its bootstrap over folds; None with fewer than
    :data:`MIN_SIZES` sizes or a fit that does not converge."""
    n, errors = np.asarray(n, float), np.asarray(errors, float)
    measured = ~np.all(np.isnan(errors), axis=1)
    n, errors = n[measured], errors[measured]
    if len(n) < MIN_SIZES:
        return None
    params = fit_power_law(n, np.nanmean(errors, axis=1))
    if params is None:
        return None
    rng = np.random.default_rng(seed)
    folds = errors.shape[1]
    boots = []
    for _ in range(BOOTSTRAPS):
        drawn = errors[:, rng.integers(0, folds, folds)]
        if np.any(np.all(np.isnan(drawn), axis=1)):
            continue
        refit = fit_power_law(n, np.nanmean(drawn, axis=1))
        if refit is not None:
            boots.append(refit)
    last = errors[-1][~np.isnan(errors[-1])]
    noise = float(np.std(last, ddof=1) / np.sqrt(len(last))) if len(last) > 1 else 0.0
    return Curve(params, np.asarray(boots).reshape(-1, 3), n, noise)
