"""Built-in tables, so a tabular run needs no download: scikit-learn's bundled tables and a
generated ``messy`` table that gives every cleaning step something to do.

``data.source: builtin`` with ``data.path`` naming one of :data:`BUILTIN_TABLES`; a plugin adds
one through the ``mlcycle.builtin_tables`` entry-point group (a function returning a DataFrame).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from mlcycle.core.registry import Registry

BUILTIN_TABLES: Registry[Callable[[], pd.DataFrame]] = Registry(
    "built-in table", "data.path", "mlcycle.builtin_tables"
)

MESSY_ROWS = 1000
MESSY_SEED = 0


def _bundled(loader: Callable[..., object], labels: bool) -> pd.DataFrame:
    """A scikit-learn bundled data set as features plus a ``target`` column (class names for
    classification, the value for regression)."""
    bunch = loader(as_frame=True)
    frame = bunch.frame.copy()  # type: ignore[attr-defined]
    if labels:
        names = np.asarray(bunch.target_names)  # type: ignore[attr-defined]
        frame["target"] = names[frame["target"].to_numpy()]
    return frame


@BUILTIN_TABLES.register("breast_cancer")
def breast_cancer() -> pd.DataFrame:
    """569 tumours, 30 numeric measurements, target ``malignant`` / ``benign``."""
    from sklearn.datasets import load_breast_cancer

    return _bundled(load_breast_cancer, labels=True)


@BUILTIN_TABLES.register("wine")
def wine() -> pd.DataFrame:
    """178 wines, 13 numeric measurements, target ``class_0`` / ``class_1`` / ``class_2``."""
    from sklearn.datasets import load_wine

    return _bundled(load_wine, labels=True)


@BUILTIN_TABLES.register("diabetes")
def diabetes() -> pd.DataFrame:
    """442 patients, 10 measurements in their original units, target: disease progression
    after one year (regression)."""
    from sklearn.datasets import load_diabetes

    return _bundled(lambda as_frame: load_diabetes(as_frame=as_frame, scaled=False), labels=False)


@BUILTIN_TABLES.register("messy")
def messy(rows: int = MESSY_ROWS, seed: int = MESSY_SEED) -> pd.DataFrame:
    """A generated customer table (1,000 rows, seeded) with every problem the pipeline treats.

    ``customer_id`` is an identifier; ``age``, ``income``, ``balance`` and ``survey_score``
    (85% missing) have missing values; ``income`` (log-normal) and ``balance`` have outliers;
    ``income_eur`` is ``income`` in another currency (correlated); ``city``, ``plan`` and
    ``region`` (40 values, a group column) are categories, ``product`` has about 80 values
    (text kind); ``is_member`` (yes/no) and ``promo_used`` (almost always 0) are boolean;
    ``signup_date`` and ``last_login`` are dates as text; ``channel`` is constant. Targets:
    ``churn`` (yes/no, classification) and ``spend`` (regression), both depending on age,
    income, city, membership, the signup month, the last login's hour and the region.
    """
    rng = np.random.default_rng(seed)
    customers = _customers(rng, rows)
    return _messy_columns(rng, rows, customers, _outcomes(rng, rows, customers))


def _customers(rng: np.random.Generator, n: int) -> dict[str, Any]:
    """The customers' true values (drawn in this order: the table depends on it)."""
    age = rng.integers(18, 86, n).astype(float)
    income = rng.lognormal(10.4, 0.55, n)
    outlier = rng.random(n) < 0.01
    balance = rng.normal(1200, 900, n)
    balance_seen = np.where(rng.random(n) < 0.02, balance + rng.choice([-1, 1], n) * 15000, balance)
    cities = np.array(["Berlin", "Lyon", "Madrid", "Oslo", "Porto", "Turin"])
    city = cities[rng.choice(6, n, p=[0.3, 0.2, 0.2, 0.1, 0.1, 0.1])]
    city_effect = dict(zip(cities, [0.0, 0.6, -0.4, 0.9, -0.2, 0.3], strict=True))
    member = rng.random(n) < 0.45
    region_index = rng.integers(0, 40, n)
    region_effect = rng.normal(0, 0.8, 40)[region_index]
    signup = pd.Timestamp("2019-01-01") + pd.to_timedelta(rng.integers(0, 5 * 365, n), unit="D")
    login = pd.Timestamp("2024-01-01") + pd.to_timedelta(
        rng.integers(0, 180 * 24 * 60, n), unit="min"
    )
    return {
        "age": age,
        "income": income,
        "income_seen": np.where(outlier, income * 25, income).round(2),
        "balance_seen": balance_seen,
        "city": city,
        "city_effect": np.array([city_effect[c] for c in city]),
        "member": member,
        "region_index": region_index,
        "region_effect": region_effect,
        "signup": signup,
        "login": login,
    }


def _outcomes(rng: np.random.Generator, n: int, c: dict[str, Any]) -> dict[str, np.ndarray]:
    """The churn score and the spend, from the customers' true values."""
    hour = c["login"].hour.to_numpy()
    night = (hour < 6) | (hour >= 22)
    score = (
        -0.04 * (c["age"] - 45)
        + 1.1 * (c["income"] < 22000)
        + c["city_effect"]
        - 1.3 * c["member"]
        + 0.9 * np.isin(c["signup"].month.to_numpy(), [11, 12])
        + 0.8 * night
        + c["region_effect"]
        + rng.normal(0, 0.7, n)
        - 0.6
    )
    spend = (
        40
        + 0.0015 * c["income"]
        + 25 * c["member"]
        + 8 * c["city_effect"]
        + 0.4 * (c["age"] - 45)
        + 6 * c["region_effect"]
        + rng.normal(0, 8, n)
    )
    return {"score": score, "spend": spend}


def _messy_columns(
    rng: np.random.Generator, n: int, c: dict[str, Any], out: dict[str, np.ndarray]
) -> pd.DataFrame:
    """The table as seen: holes, a near-constant and a constant column, ids, products."""

    def holes(values: np.ndarray, share: float) -> np.ndarray:
        values = values.astype(object if values.dtype.kind in "OUS" else float)
        values[rng.random(n) < share] = None if values.dtype == object else np.nan
        return values

    products = np.array([f"item-{i:02d}" for i in range(80)])
    weights = 1.0 / np.arange(1, 81)
    promo = np.zeros(n, dtype=int)
    promo[rng.choice(n, 4, replace=False)] = 1
    income_seen = c["income_seen"]
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in rng.permutation(n) + 1],
            "signup_date": holes(np.asarray(c["signup"].strftime("%Y-%m-%d")), 0.03),
            "last_login": np.asarray(c["login"].strftime("%Y-%m-%d %H:%M")),
            "age": holes(c["age"], 0.05),
            "income": holes(income_seen, 0.10),
            "income_eur": (income_seen * 0.92 + rng.normal(0, 5, n)).round(2),
            "balance": holes(c["balance_seen"].round(2), 0.02),
            "visits": rng.poisson(3, n),
            "city": holes(c["city"], 0.04),
            "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.6, 0.3, 0.1]),
            "product": products[rng.choice(80, n, p=weights / weights.sum())],
            "is_member": holes(np.where(c["member"], "yes", "no"), 0.05),
            "promo_used": promo,
            "region": np.array([f"R{i:02d}" for i in range(40)])[c["region_index"]],
            "channel": "web",
            "survey_score": holes(rng.integers(1, 11, n), 0.85),
            "spend": out["spend"].round(2),
            "churn": np.where(out["score"] > 0, "yes", "no"),
        }
    )
