"""Figures of a table's EDA, made without pyplot (no global state), shared by the HTML page, the
PNG files and the notebook. A figure with nothing to show returns None."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from mlcycle.tables.quality.analysis import TableEDA
from mlcycle.tables.quality.columns import Column, shifted
from mlcycle.tables.quality.relations import CATEGORICAL

SHOWN = 24  # columns drawn at most per grid (the most associated with the target first)
BARS = 10  # categories drawn per bar chart


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes (its constrained layout already fits it: no second, tight pass)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


def _grid(
    n: int, cols: int = 4, width: float = 3.4, height: float = 2.5
) -> tuple[Figure, np.ndarray]:
    cols = max(1, min(cols, n))
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax in axes[n:]:
        ax.axis("off")
    return fig, axes


def _colour(k: int, n: int) -> tuple[float, ...]:
    return colormaps["tab10" if n <= 10 else "tab20"](k % (10 if n <= 10 else 20))


def _ranked(eda: TableEDA, kinds: tuple[str, ...]) -> list[Column]:
    """Features of ``kinds``, the most associated with the target first, at most SHOWN."""
    by_name = eda.by_name
    chosen = [
        by_name[f] for f in eda.features if by_name[f].kind in kinds and by_name[f].unique > 1
    ]
    score = {f: (v or 0.0) for f, (v, _) in eda.association.items()}
    chosen.sort(key=lambda c: -score.get(c.name, 0.0))
    return chosen[:SHOWN]


def _within(col: Column) -> tuple[np.ndarray, int]:
    """The column's numbers inside its IQR fences (so that a few extreme values do not squash
    the picture) and how many were left out."""
    x = col.values[np.isfinite(col.values)] if col.values is not None else np.array([])
    if not col.fences:
        return x, 0
    inside = (x >= col.fences[0]) & (x <= col.fences[1])
    return x[inside], int((~inside).sum())


def _bars(ax, series: pd.Series, colour: str = "tab:purple") -> None:
    counts = series.astype(str).where(series.notna(), "(missing)").value_counts()
    top = counts.head(BARS)
    ax.barh([str(v)[:20] for v in top.index][::-1], top.to_numpy()[::-1], color=colour)
    if len(counts) > BARS:
        ax.text(
            0.98,
            0.02,
            f"+{len(counts) - BARS} more",
            transform=ax.transAxes,
            ha="right",
            fontsize=7,
        )


def target(eda: TableEDA) -> Figure:
    """The class balance (classification) or the target's histogram (regression)."""
    fig = Figure(figsize=(7, 3.2), layout="constrained")
    ax = fig.subplots()
    col = eda.by_name[eda.target]
    if eda.task == "classification":
        _bars(ax, eda.y, "tab:blue")
        ax.set(xlabel="rows", title=f"target '{eda.target}': rows per class")
    else:
        x = col.values[np.isfinite(col.values)] if col.values is not None else []
        ax.hist(x, bins=40, histtype="stepfilled", color="tab:blue")
        skew = "" if col.skew is None else f", skew {col.skew:.2f}"
        ax.set(xlabel=eda.target, ylabel="rows", title=f"target '{eda.target}'{skew}")
    return fig


def missing(eda: TableEDA) -> Figure | None:
    cols = [c for c in eda.columns if c.missing]
    if not cols:
        return None
    fig = Figure(figsize=(7, max(2.0, 0.28 * len(cols) + 1)), layout="constrained")
    ax = fig.subplots()
    ax.barh(
        [c.name for c in cols][::-1], [100 * c.missing_share for c in cols][::-1], color="tab:red"
    )
    ax.set(xlabel="% of rows missing", xlim=(0, 100), title="missing values per column")
    return fig


def distributions(eda: TableEDA) -> Figure | None:
    """A histogram per numeric feature (with its skew and suggested transform) and the most
    common values of each categorical one."""
    shown = _ranked(eda, ("numeric", *CATEGORICAL, "datetime"))
    if not shown:
        return None
    fig, axes = _grid(len(shown))
    for ax, col in zip(axes, shown, strict=False):
        series = eda.frame[col.name]
        if col.kind == "numeric" and col.values is not None:
            x, left_out = _within(col)
            ax.hist(x, bins=30, histtype="stepfilled", color="tab:purple")
            extra = "" if col.skew is None else f"skew {col.skew:.2f}"
            if col.transform:
                extra += f" -> {col.transform['name']}"
            if left_out:
                extra += f"; {left_out} outliers not drawn"
        elif col.kind == "datetime":
            stamps = pd.to_datetime(series, errors="coerce", format="mixed").dropna()
            ax.hist(stamps, bins=30, histtype="stepfilled", color="tab:green")
            ax.tick_params(axis="x", labelrotation=30)
            extra = "dates"
        else:
            _bars(ax, series)
            extra = f"{col.unique} values"
        ax.set_title(
            f"{col.name} ({col.kind}, {100 * col.missing_share:.0f}% missing)\n{extra}", fontsize=8
        )
        ax.tick_params(labelsize=7)
    return fig


def transforms(eda: TableEDA) -> Figure | None:
    """Skewed columns before and after their suggested transform."""
    from scipy import stats

    shown = [c for c in eda.columns if c.transform and c.values is not None][: SHOWN // 2]
    if not shown:
        return None
    fig = Figure(figsize=(7, 2.3 * len(shown)), layout="constrained")
    axes = fig.subplots(len(shown), 2, squeeze=False)
    for (a, b), col in zip(axes, shown, strict=True):
        x = col.values[np.isfinite(col.values)]
        name = col.transform["name"]
        if name == "log":
            after = np.log1p(shifted(x))
        elif name == "sqrt":
            after = np.sqrt(shifted(x))
        elif name == "clip":
            after = np.clip(x, *(col.fences or (x.min(), x.max())))
        else:
            after = stats.yeojohnson(x, col.transform.get("lambda"))
        a.hist(x, bins=30, histtype="stepfilled", color="tab:purple")
        a.set_title(f"{col.name}: skew {col.transform['skew_before']:.2f}", fontsize=8)
        b.hist(after, bins=30, histtype="stepfilled", color="tab:green")
        b.set_title(f"{name}({col.name}): skew {col.transform['skew_after']:.2f}", fontsize=8)
    return fig


def outliers(eda: TableEDA) -> Figure | None:
    """A box plot per numeric feature with IQR outliers (whiskers at the fences)."""
    shown = [c for c in _ranked(eda, ("numeric",)) if c.outliers]
    if not shown:
        return None
    fig, axes = _grid(len(shown), cols=4, height=1.6)
    for ax, col in zip(axes, shown, strict=False):
        x = col.values[np.isfinite(col.values)]
        ax.boxplot(x, orientation="horizontal", whis=1.5, widths=0.6, flierprops={"markersize": 3})
        ax.set_title(
            f"{col.name}: {len(col.outliers)} outliers ({100 * len(col.outliers) / col.rows:.1f}%)",
            fontsize=8,
        )
        ax.set_yticks([])
        ax.tick_params(labelsize=7)
    return fig


def _heat(fig: Figure, ax, matrix: dict, title: str, vmin: float) -> None:
    names = matrix["names"]
    m = np.array([[np.nan if v is None else v for v in row] for row in matrix["values"]])
    im = ax.imshow(m, vmin=vmin, vmax=1, cmap="coolwarm" if vmin < 0 else "viridis")
    size = 7 if len(names) <= 20 else 5
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=size)
    ax.set_yticks(range(len(names)), names, fontsize=size)
    if len(names) <= 12:
        for i in range(len(names)):
            for j in range(len(names)):
                if np.isfinite(m[i, j]):
                    ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=6)
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title(title, fontsize=9)


def correlations(eda: TableEDA) -> Figure | None:
    """Heat maps: Pearson and Spearman of numeric columns, Cramer's V of categorical ones (the
    target included)."""
    shown = [
        (eda.correlations.get(k), title, vmin)
        for k, title, vmin in (
            ("pearson", "Pearson (numeric)", -1.0),
            ("spearman", "Spearman (numeric)", -1.0),
            ("cramers_v", "Cramer's V (categorical)", 0.0),
        )
        if eda.correlations.get(k)
    ]
    if not shown:
        return None
    side = max(4.0, 0.32 * max(len(m["names"]) for m, _, _ in shown) + 2)
    fig = Figure(figsize=(side * len(shown), side), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(shown), squeeze=False)).ravel()
    for ax, (matrix, title, vmin) in zip(axes, shown, strict=True):
        _heat(fig, ax, matrix, title, vmin)
    return fig


def _against_classes(ax, col: Column, series: pd.Series, y: pd.Series) -> None:
    """Per-class histograms of a number, or the class shares of each category."""
    classes = sorted(y.dropna().astype(str).unique())
    if col.kind == "numeric" and col.values is not None:
        ok = np.isfinite(col.values)
        bins = np.histogram_bin_edges(_within(col)[0], bins=25)  # outliers not drawn
        for k, c in enumerate(classes[:20]):
            mask = ok & (y.astype(str) == c).to_numpy()
            ax.hist(
                col.values[mask],
                bins=bins,
                alpha=0.5,
                density=True,
                label=c,
                histtype="stepfilled",
                color=_colour(k, len(classes)),
            )
    else:
        labels = series.astype(str).where(series.notna(), "(missing)")
        top = labels.value_counts().index[:BARS]
        share = pd.crosstab(labels[labels.isin(top)], y.astype(str), normalize="index")
        left = np.zeros(len(share))
        for k, c in enumerate(share.columns):
            ax.barh(
                [str(v)[:20] for v in share.index],
                share[c],
                left=left,
                label=c,
                color=_colour(k, len(share.columns)),
            )
            left += share[c].to_numpy()
    if len(classes) <= 10:
        ax.legend(fontsize=6)


def _against_numbers(ax, col: Column, series: pd.Series, y: pd.Series, name: str) -> None:
    """A scatter plot against a numeric target, or its box plot per category."""
    target = pd.to_numeric(y, errors="coerce").to_numpy(dtype=float)
    if col.kind == "numeric" and col.values is not None:
        ax.scatter(col.values, target, s=4, alpha=0.4, color="tab:blue")
        if col.fences:  # outliers not drawn
            low, high = col.fences
            ax.set_xlim(max(low, col.stats["min"]), min(high, col.stats["max"]))
        ax.set_ylabel(name, fontsize=7)
    else:
        labels = series.astype(str).where(series.notna(), "(missing)")
        top = list(labels.value_counts().index[:BARS])
        groups = [target[(labels == v).to_numpy() & np.isfinite(target)] for v in top]
        ax.boxplot(
            groups,
            orientation="horizontal",
            tick_labels=[str(v)[:20] for v in top],
            flierprops={"markersize": 2},
        )
        ax.set_xlabel(name, fontsize=7)


def target_relationship(eda: TableEDA) -> Figure | None:
    """Each feature against the target: per-class histograms or category shares
    (classification), scatter plots or per-category box plots (regression)."""
    shown = _ranked(eda, ("numeric", *CATEGORICAL))[:12]
    if not shown:
        return None
    fig, axes = _grid(len(shown), cols=3, width=4.0, height=2.8)
    for ax, col in zip(axes, shown, strict=False):
        series = eda.frame[col.name]
        if eda.task == "classification":
            _against_classes(ax, col, series, eda.y)
        else:
            _against_numbers(ax, col, series, eda.y, eda.target)
        value, how = eda.association.get(col.name, (None, ""))
        score = "" if value is None else f"{how} {value:.2f}"
        ax.set_title(f"{col.name} ({score})", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(f"features against the target '{eda.target}'", fontsize=9)
    return fig


def leakage(eda: TableEDA, limit: float = 0.99) -> Figure | None:
    """Each feature's association with the target and its single-feature cross-validated score."""
    names = [f for f in eda.features if f in eda.leak_scores or f in eda.association]
    if not names:
        return None
    names.sort(key=lambda f: -eda.leak_scores.get(f, 0.0))
    names = names[:30]
    fig = Figure(figsize=(10, max(2.2, 0.28 * len(names) + 1.2)), layout="constrained")
    a, b = fig.subplots(1, 2, sharey=True)
    assoc = [eda.association.get(f, (None, ""))[0] or 0.0 for f in names]
    scores = [eda.leak_scores.get(f, 0.0) for f in names]
    a.barh(names[::-1], assoc[::-1], color="tab:olive")
    a.set(xlim=(0, 1), title="association with the target (0 none, 1 determines it)")
    metric = "balanced accuracy" if eda.task == "classification" else "R^2"
    colours = ["tab:red" if s >= limit else "tab:gray" for s in scores]
    b.barh(names[::-1], np.clip(scores, 0, 1)[::-1], color=colours[::-1])
    b.axvline(limit, color="tab:red", linestyle="--", linewidth=1)
    b.set(xlim=(0, 1), title=f"one feature alone: cross-validated {metric} (red: a leak?)")
    for ax in (a, b):
        ax.tick_params(labelsize=7)
        ax.title.set_fontsize(8)
    return fig


def pca(eda: TableEDA) -> Figure | None:
    """The 2-D PCA projection coloured by the target and by the k-means cluster, and the
    explained variance per component."""
    if eda.pca is None:
        return None
    fig = Figure(figsize=(15, 4.6), layout="constrained")
    a, b, c = fig.subplots(1, 3)
    p = eda.pca
    y = eda.y.iloc[eda.pca_rows].reset_index(drop=True)
    if eda.task == "classification":
        classes = sorted(y.dropna().astype(str).unique())
        for k, name in enumerate(classes[:20]):
            mask = (y.astype(str) == name).to_numpy()
            a.scatter(
                p[mask, 0], p[mask, 1], s=6, alpha=0.6, label=name, color=_colour(k, len(classes))
            )
        if len(classes) <= 20:
            a.legend(fontsize=6, markerscale=2)
    else:
        points = a.scatter(
            p[:, 0], p[:, 1], s=6, alpha=0.6, c=pd.to_numeric(y, errors="coerce"), cmap="viridis"
        )
        fig.colorbar(points, ax=a, fraction=0.046, label=eda.target)
    v = eda.pca_variance
    a.set(
        title=f"PCA ({100 * sum(v[:2]):.0f}% of variance) by target '{eda.target}'",
        xticks=[],
        yticks=[],
    )
    if eda.clusters is not None:
        for k in range(eda.k or 0):
            mask = eda.clusters == k
            b.scatter(
                p[mask, 0],
                p[mask, 1],
                s=6,
                alpha=0.6,
                label=f"cluster {k}",
                color=_colour(k, eda.k or 1),
            )
        b.legend(fontsize=6, markerscale=2)
        b.set_title(f"by k-means cluster (k={eda.k}, silhouette {eda.silhouettes[eda.k]:.2f})")
    b.set(xticks=[], yticks=[])
    c.bar(range(1, len(v) + 1), v, color="tab:blue", label="per component")
    c.plot(range(1, len(v) + 1), np.cumsum(v), "o-", color="tab:orange", label="cumulative")
    c.set(
        xlabel="component",
        ylabel="explained variance ratio",
        ylim=(0, 1.02),
        title="explained variance",
    )
    c.legend(fontsize=7)
    for ax in (a, b, c):
        ax.title.set_fontsize(9)
    return fig


def clusters(eda: TableEDA) -> Figure | None:
    """Silhouette per k (k-means) and the chosen clustering's sizes."""
    if not eda.silhouettes:
        return None
    fig = Figure(figsize=(9, 3), layout="constrained")
    a, b = fig.subplots(1, 2)
    ks = sorted(eda.silhouettes)
    a.plot(ks, [eda.silhouettes[k] for k in ks], "o-")
    a.set(xlabel="k", ylabel="silhouette", title="k-means: silhouette by k (highest chosen)")
    sizes = eda.cluster_target.get("sizes", [])
    b.bar(range(len(sizes)), sizes, color=[_colour(k, len(sizes)) for k in range(len(sizes))])
    b.set(xlabel="cluster", ylabel="rows", title=f"cluster sizes (k={eda.k})")
    for ax in (a, b):
        ax.title.set_fontsize(9)
    return fig
