"""compare.py's ``--preset fast|medium|best`` on a table: candidate sets, quickest first.

A preset's candidates join the YAML's (a YAML candidate of the same name wins, so a preset
candidate can be retuned by name); with a preset the YAML may list none. Quick ones come first,
so a ``--time_limit`` spends the budget on them before the slow ones. Every short name works
for classification and regression (:data:`mlcycle.tables.classic.ESTIMATORS`).
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import Any

# Linear models and k-NN measure distances: categories one-hot, not integer codes.
ONEHOT = ["--data.pipeline.categorical={encode: onehot}"]

FAST: list[dict[str, Any]] = [
    {"name": "linear", "estimator": "linear", "args": ONEHOT},
    {"name": "decision_tree", "estimator": "decision_tree", "params": {"max_depth": 6}},
    {"name": "hist_gradient_boosting", "estimator": "hist_gradient_boosting",
     "params": {"max_iter": 100}},
]  # fmt: skip
# The boosted libraries are an extra (pip install mlcycle[boosted]): the presets take those
# installed; medium LightGBM and CatBoost (with early stopping; CatBoost in place of
# HistGradientBoosting, which LightGBM repeats: out of fold it scored RMSE 55.2 vs 61.7 on
# diabetes, 19.6 vs 19.7 on messy spend), best all three.
BOOSTED = [
    {"name": name, "estimator": name} for name in ("lightgbm", "xgboost", "catboost")
    if find_spec(name) is not None
]  # fmt: skip
MEDIUM_BOOSTED = ("lightgbm", "catboost")
HIST = {"name": "hist_gradient_boosting", "estimator": "hist_gradient_boosting",
        "params": {"max_iter": 300}}  # fmt: skip
# Randomized split points (AutoGluon's LightGBMXT and ExtraTrees, in each of its presets): on
# small noisy tables they generalize where the greedy splits overfit, and they ensemble well.
LIGHTGBM_XT = [
    {"name": "lightgbm_xt", "estimator": "lightgbm", "params": {"extra_trees": True}}
    for b in BOOSTED if b["name"] == "lightgbm"
]  # fmt: skip
MEDIUM: list[dict[str, Any]] = [
    FAST[0],
    *(b for b in BOOSTED if b["name"] == "lightgbm"),
    *LIGHTGBM_XT,
    *([b for b in BOOSTED if b["name"] == "catboost"] or [HIST]),
    {"name": "extra_trees", "estimator": "extra_trees", "params": {"n_estimators": 300}},
    {"name": "random_forest", "estimator": "random_forest", "params": {"n_estimators": 300}},
    {"name": "mlp"},  # the base config's model (TabularTask)
]  # fmt: skip
BEST: list[dict[str, Any]] = [
    *MEDIUM,
    *(b for b in BOOSTED if b["name"] not in MEDIUM_BOOSTED),
    *([HIST] if HIST not in MEDIUM else []),
    {"name": "knn", "estimator": "knn", "params": {"n_neighbors": 15}, "args": ONEHOT},
    {"name": "svm", "estimator": "svm", "params": {"C": 1.0}, "args": ONEHOT},
    {"name": "mlp_wide", "args": ["--model.hidden=[256, 128]", "--model.dropout=0.2"]},
]

TABLE_PRESETS: dict[str, list[dict[str, Any]]] = {"fast": FAST, "medium": MEDIUM, "best": BEST}
