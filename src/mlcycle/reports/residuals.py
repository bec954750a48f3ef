"""The residual plot of a regression model (here, outside `mlcycle.tables`, so the figure worker
draws it without importing pandas, scikit-learn and torch)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from mlcycle.reports import figures as _figures  # noqa: F401  (selects matplotlib's Agg backend)

MAX_POINTS = 20_000  # a fixed sample of larger splits is drawn


def residual_figure(predicted: np.ndarray, actual: np.ndarray, title: str) -> Figure:
    """Predicted against actual (with the diagonal) and residuals against predicted."""
    import matplotlib.pyplot as plt

    predicted, actual = np.asarray(predicted, float), np.asarray(actual, float)
    if len(predicted) > MAX_POINTS:
        keep = np.random.default_rng(0).choice(len(predicted), MAX_POINTS, replace=False)
        predicted, actual = predicted[keep], actual[keep]
    residual = actual - predicted
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    alpha = 0.6 if len(predicted) < 2000 else 0.25
    left.scatter(actual, predicted, s=8, alpha=alpha)
    low = float(min(actual.min(), predicted.min()))
    high = float(max(actual.max(), predicted.max()))
    left.plot([low, high], [low, high], color="black", linewidth=1)
    left.set(xlabel="actual", ylabel="predicted", title="predicted vs actual")
    right.scatter(predicted, residual, s=8, alpha=alpha)
    right.axhline(0, color="black", linewidth=1)
    right.set(xlabel="predicted", ylabel="actual - predicted", title="residuals")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
