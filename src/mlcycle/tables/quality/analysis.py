"""The EDA of a table, computed once: each column described, correlations, each feature against
the target (association and single-feature score), and k-means + PCA of the features.

When the data module can tell each row's split, only train and val rows are read unless
``include_test`` is set, as for images.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlcycle.core.errors import UserError
from mlcycle.tables.quality.checks import TableThresholds, leak_findings
from mlcycle.tables.quality.columns import Column, describe_columns
from mlcycle.tables.quality.relations import (
    CATEGORICAL,
    correlations,
    leakage_scores,
    strong_pairs,
    target_association,
)
from mlcycle.tables.quality.source import Table, TableSpec, load
from mlcycle.tables.quality.validate import feature_names, leak_inputs

MAX_POINTS = 5000  # rows that PCA and k-means see at most (a random sample)
SILHOUETTE_ROWS = 2000
MAX_K = 8
TOP_LEVELS = 10  # one-hot columns per categorical feature in the PCA input (the rest: "other")


@dataclass
class TableEDA:
    """The analysis; figures and tables read it, nothing else does any work."""

    spec: TableSpec
    configs: list[str]
    overrides: list[str]
    include_test: bool
    sample: int | None
    seed: int
    created: str
    target: str
    task: str
    classes: list[str]
    rows_total: int  # rows of the table
    split_counts: dict[str, int] | None  # rows per split (every row), None when not known
    frame: pd.DataFrame = field(repr=False)  # the analysed rows
    columns: list[Column] = field(default_factory=list)
    features: list[str] = field(default_factory=list)
    correlations: dict[str, Any] = field(default_factory=dict)
    strong_pairs: list[dict[str, Any]] = field(default_factory=list)
    association: dict[str, tuple[float | None, str]] = field(default_factory=dict)
    leak_scores: dict[str, float] = field(default_factory=dict)
    leaks: list[dict[str, Any]] = field(default_factory=list)
    pca: np.ndarray | None = None  # (points, 2)
    pca_variance: list[float] = field(default_factory=list)  # ratio per component (up to 10)
    pca_rows: list[int] = field(default_factory=list)  # positions in frame of the points
    pca_inputs: list[str] = field(default_factory=list)  # the columns PCA and k-means saw
    clusters: np.ndarray | None = None  # k-means label per point
    silhouettes: dict[int, float] = field(default_factory=dict)
    k: int | None = None
    cluster_target: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def by_name(self) -> dict[str, Column]:
        return {c.name: c for c in self.columns}

    @property
    def splits_read(self) -> list[str]:
        if self.split_counts is None:
            return ["all rows (no split assigned)"]
        return ["train", "val", "test"] if self.include_test else ["train", "val"]

    @property
    def y(self) -> pd.Series:
        return self.frame[self.target]


def _pick(table: Table, include_test: bool, sample: int | None, seed: int) -> pd.DataFrame:
    rows = np.arange(len(table.frame))
    if table.splits is not None and not include_test:
        rows = np.array([i for i, s in enumerate(table.splits) if s != "test"], dtype=int)
    if sample is not None and len(rows) > sample:
        rows = np.sort(np.random.default_rng(seed).choice(rows, sample, replace=False))
    if len(rows) == 0:
        raise UserError("no train or val rows to analyse; pass --include-test or check the splits")
    return table.frame.iloc[rows].reset_index(drop=True)


def pca_matrix(
    frame: pd.DataFrame, columns: list[Column], features: list[str]
) -> tuple[np.ndarray, list[str]]:
    """Numeric features clipped to their IQR fences and standardized (median for missing),
    categorical ones one-hot (their most common levels), as one matrix; and the columns used."""
    by_name = {c.name: c for c in columns}
    parts, used = [], []
    for name in features:
        col = by_name[name]
        if col.unique <= 1 or col.top_share >= 0.98:  # (near-)constant: nothing to see
            continue
        if col.kind == "numeric" and col.values is not None:
            x = col.values.copy()
            x[~np.isfinite(x)] = np.nanmedian(x)
            # clipped to the IQR fences: a few extreme values would otherwise make the first
            # component and a cluster of their own
            if col.fences:
                x = np.clip(x, *col.fences)
            parts.append(((x - x.mean()) / (x.std() or 1.0))[:, None])
        elif col.kind in CATEGORICAL:
            labels = frame[name].astype(str).where(frame[name].notna(), "(missing)")
            top = set(labels.value_counts().index[:TOP_LEVELS])
            onehot = pd.get_dummies(labels.where(labels.isin(top), "(other)")).to_numpy(float)
            parts.append(
                onehot - onehot.mean(0)
            )  # 0/1 (not standardized: rare levels would dominate)
        else:
            continue
        used.append(name)
    if not parts:
        return np.zeros((len(frame), 0)), []
    return np.hstack(parts), used


def _embed(eda: TableEDA) -> None:
    """PCA to 2-D and k-means with k by silhouette, on up to MAX_POINTS rows."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.metrics import adjusted_rand_score, silhouette_score
    from threadpoolctl import threadpool_limits

    x, used = pca_matrix(eda.frame, eda.columns, eda.features)
    n = len(x)
    if x.shape[1] < 2 or n < 10:
        return
    rng = np.random.default_rng(eda.seed)
    rows = np.sort(rng.permutation(n)[:MAX_POINTS])
    x = x[rows]
    # One BLAS thread: on a small shared machine spinning thread pools cost more than they give.
    with threadpool_limits(1):
        pca = PCA(n_components=min(10, x.shape[1], len(x)), random_state=eda.seed)
        projected = pca.fit_transform(x)
        eda.pca, eda.pca_rows, eda.pca_inputs = projected[:, :2], rows.tolist(), used
        eda.pca_variance = [round(float(v), 4) for v in pca.explained_variance_ratio_]
        scored = rng.permutation(len(x))[:SILHOUETTE_ROWS]
        fits = {}
        for k in range(2, min(MAX_K, len(x) - 1) + 1):
            km = KMeans(n_clusters=k, n_init=4, random_state=eda.seed).fit(x)
            if len(set(km.labels_[scored])) < 2:
                continue
            fits[k] = km.labels_
            eda.silhouettes[k] = round(float(silhouette_score(x[scored], km.labels_[scored])), 4)
    if not eda.silhouettes:
        return
    eda.k = max(eda.silhouettes, key=lambda k: eda.silhouettes[k])
    eda.clusters = fits[eda.k]
    y = eda.y.iloc[rows]
    sizes = np.bincount(eda.clusters).tolist()
    if eda.task == "classification":
        ok = y.notna().to_numpy()
        ari = adjusted_rand_score(y[ok].astype(str), eda.clusters[ok]) if ok.any() else None
        table = pd.crosstab(eda.clusters, y.astype(str))
        eda.cluster_target = {
            "sizes": sizes,
            "adjusted_rand": None if ari is None else round(float(ari), 4),
            "classes": {
                int(k): {str(c): int(v) for c, v in row.items()} for k, row in table.iterrows()
            },
        }
    else:
        values = pd.to_numeric(y, errors="coerce").to_numpy(dtype=float)
        means = [
            float(np.nanmean(values[eda.clusters == k]))
            if np.isfinite(values[eda.clusters == k]).any()
            else None
            for k in range(eda.k)
        ]
        eda.cluster_target = {
            "sizes": sizes,
            "target_mean": [None if m is None else round(m, 4) for m in means],
        }


def analyse_table(
    table: Table,
    include_test: bool = False,
    sample: int | None = None,
    seed: int = 0,
    thresholds: TableThresholds | None = None,
) -> TableEDA:
    """Run the whole analysis of ``table`` (seconds for tens of thousands of rows)."""
    start = time.perf_counter()
    t = thresholds or TableThresholds()
    frame = _pick(table, include_test, sample, seed)
    schema = table.schema
    eda = TableEDA(
        spec=table.spec,
        configs=table.configs,
        overrides=table.overrides,
        include_test=include_test,
        sample=sample,
        seed=seed,
        created=time.strftime("%Y-%m-%d %H:%M:%S"),
        target=schema.target,
        task=schema.task,
        classes=[str(c) for c in schema.classes],
        rows_total=len(table.frame),
        split_counts=None
        if table.splits is None
        else dict(Counter(s or "not used" for s in table.splits)),
        frame=frame,
    )
    eda.columns = describe_columns(frame, schema, t.iqr_k)
    eda.features = [f for f in feature_names(schema) if f in frame.columns]
    by_name = eda.by_name
    numeric = {
        f: by_name[f].values
        for f in eda.features
        if by_name[f].kind == "numeric" and by_name[f].values is not None
    }
    categorical = {f: frame[f] for f in eda.features if by_name[f].kind in CATEGORICAL}
    target = by_name[eda.target]
    if eda.task == "regression" and target.values is not None:
        numeric[eda.target] = target.values
    elif eda.task == "classification":
        categorical[eda.target] = frame[eda.target]
    eda.correlations = correlations(numeric, categorical)
    eda.strong_pairs = [
        p for p in strong_pairs(eda.correlations) if eda.target not in (p["a"], p["b"])
    ]
    for f in eda.features:
        col = by_name[f]
        if col.unique > 1 and col.kind in ("numeric", *CATEGORICAL):
            values = col.values if col.kind == "numeric" else None
            eda.association[f] = target_association(frame[f], values, eda.y, eda.task)
    present = Table(table.spec, frame, schema)
    eda.leak_scores = leakage_scores(leak_inputs(present, eda.columns), eda.y, eda.task, seed)
    eda.leaks = leak_findings(eda.leak_scores, eda.task, t.leak_score)
    _embed(eda)
    eda.seconds = round(time.perf_counter() - start, 2)
    return eda


def analyse(
    spec: dict[str, Any] | None = None,
    configs: list[str] | None = None,
    overrides: list[str] | None = None,
    include_test: bool = False,
    sample: int | None = None,
    seed: int = 0,
) -> TableEDA:
    """Read the table (of ``spec``, or of the config's data module) and analyse it: what the
    notebook calls to recompute everything."""
    given = None if spec is None else TableSpec(**{**spec, "drop": tuple(spec.get("drop") or ())})
    table = load(given, configs or [], overrides or [])
    return analyse_table(table, include_test, sample, seed)
