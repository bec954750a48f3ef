"""HTML tables of a table's EDA, shared by the HTML page and the notebook."""

from __future__ import annotations

from mlcycle.quality.eda.tables import paragraph, table
from mlcycle.tables.quality.analysis import TableEDA
from mlcycle.tables.quality.columns import pipeline_setting


def provenance(eda: TableEDA) -> str:
    if eda.split_counts is None:
        test = "no split assigned to the rows (a --table read directly): every row is analysed"
    elif eda.include_test:
        test = "READ: --include-test was given, so test rows are analysed below"
    else:
        test = f"not read ({eda.split_counts.get('test', 0)} rows)"
    rows = [
        (
            "table",
            f"{eda.spec.source}: {eda.spec.where}"
            + (f" ({eda.spec.query})" if eda.spec.query else ""),
        ),
        ("configs", ", ".join(eda.configs) or "none"),
        ("overrides", " ".join(eda.overrides) or "none"),
        ("target", f"{eda.target} ({eda.task})"),
        ("classes", ", ".join(eda.classes) or "none (regression)"),
        (
            "rows",
            f"{len(eda.frame)} analysed of {eda.rows_total} (sample cap {eda.sample or 'none'})",
        ),
        (
            "rows per split",
            ", ".join(f"{k} {v}" for k, v in (eda.split_counts or {}).items()) or "unknown",
        ),
        ("test split", test),
        ("columns", f"{len(eda.columns)} ({len(eda.features)} features)"),
        ("created", f"{eda.created} in {eda.seconds}s"),
    ]
    return table(("", ""), rows)


def _distribution(c) -> str:
    if c.stats:
        s = c.stats
        return ", ".join(f"{k} {s[k]:.4g}" for k in ("min", "median", "mean", "max", "std"))
    return ", ".join(f"{v[:20]} ({n})" for v, n in c.top[:5])


def columns(eda: TableEDA) -> str:
    rows = [
        (
            c.name,
            c.kind,
            c.dtype,
            c.dropped or "",
            f"{100 * c.missing_share:.1f}%",
            c.unique,
            _distribution(c),
            c.skew,
            c.transform["name"] if c.transform else "",
            len(c.outliers),
            "yes" if c.mixed else "",
        )
        for c in eda.columns
    ]
    header = (
        "column",
        "type",
        "dtype",
        "not a feature because",
        "missing",
        "distinct",
        "distribution",
        "skew",
        "suggested transform",
        "IQR outliers",
        "mixed types",
    )
    return table(header, rows, "every column (types as training infers them)")


def transforms(eda: TableEDA) -> str:
    rows = [
        (
            c.name,
            c.transform["skew_before"],
            c.transform["name"],
            c.transform["skew_after"],
            ", ".join(f"{k} {v}" for k, v in c.transform["candidates"].items()),
            "data.pipeline: " + pipeline_setting(c.name, c.transform["name"]),
        )
        for c in eda.columns
        if c.transform
    ]
    if not rows:
        return paragraph(
            "No numeric column has |skew| above 1 that a transform halves: none suggested."
        )
    header = ("column", "skew", "suggested", "skew after", "skew after each candidate", "config")
    return table(
        header,
        rows,
        "skewed columns: the transform that leaves the least skew (the simplest when close; log is log1p)",
    )


def outliers(eda: TableEDA) -> str:
    rows = [
        (
            c.name,
            len(c.outliers),
            f"{100 * len(c.outliers) / c.rows:.1f}%",
            c.fences[0],
            c.fences[1],
        )
        for c in eda.columns
        if c.outliers and c.fences
    ]
    if not rows:
        return paragraph("No value outside Tukey's fences (Q1 - 1.5 IQR, Q3 + 1.5 IQR).")
    return table(
        ("column", "outliers", "share", "low fence", "high fence"),
        rows,
        "IQR rule: values below Q1 - 1.5 IQR or above Q3 + 1.5 IQR",
    )


def correlated(eda: TableEDA) -> str:
    rows = [(p["a"], p["b"], p["measure"], p["value"]) for p in eda.strong_pairs]
    if not rows:
        return paragraph("No pair of features correlates at |r| >= 0.9 (or Cramer's V >= 0.9).")
    return table(
        ("column", "column", "measure", "value"),
        rows,
        "strongly related feature pairs: one of each may be dropped",
    )


def target(eda: TableEDA) -> str:
    metric = "balanced accuracy" if eda.task == "classification" else "R^2"
    rows = []
    for f in sorted(eda.features, key=lambda f: -eda.leak_scores.get(f, 0.0)):
        value, how = eda.association.get(f, (None, ""))
        score = eda.leak_scores.get(f)
        flag = "LEAK?" if any(leak["column"] == f for leak in eda.leaks) else ""
        rows.append((f, eda.by_name[f].kind, value, how, score, flag))
    out = table(
        ("feature", "type", "association", "measured by", f"alone: CV {metric}", ""),
        rows,
        "each feature against the target",
    )
    for leak in eda.leaks:
        out += paragraph(
            f": {leak['reason']}. A feature this good on its own is usually the target in "
            "disguise (recorded after the fact, or derived from it); check it before training.",
            note=True,
            lead="Column ",
            bold=leak["column"],
        )
    return out


def clusters(eda: TableEDA) -> str:
    if eda.k is None:
        return paragraph("Too few rows or numeric/categorical features for PCA and k-means.")
    ct = eda.cluster_target
    rows = [
        ("inputs", ", ".join(eda.pca_inputs)),
        ("explained variance per component", ", ".join(f"{v:.3f}" for v in eda.pca_variance)),
        ("k (highest silhouette)", f"{eda.k} (silhouette {eda.silhouettes[eda.k]})"),
        ("cluster sizes", ", ".join(map(str, ct.get("sizes", [])))),
    ]
    if "adjusted_rand" in ct:
        rows.append(("clusters vs classes (adjusted Rand index)", ct["adjusted_rand"]))
    if "target_mean" in ct:
        rows.append(("target mean per cluster", ", ".join(map(str, ct["target_mean"]))))
    return table(("", ""), rows, "k-means on the standardized features, PCA for the picture")
