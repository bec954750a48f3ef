"""What a learning curve says and writes: ``learning_curve.json``, ``.csv``, ``.png`` and
``.html`` in the output folder, and the one line on twice the data (or on a flat curve).

The power law is fitted to the error of the ranking metric: ``1 - metric`` for a metric where
higher is better (F1, accuracy, R^2), the metric itself where lower is (loss, RMSE).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from mlcycle.core.html import render
from mlcycle.core.record import write_json
from mlcycle.selection.curve.fit import MIN_SIZES, Curve, fit_curve

FILES = ("learning_curve.json", "learning_curve.csv", "learning_curve.png", "learning_curve.html")


def to_error(values: np.ndarray, mode: str) -> np.ndarray:
    return 1.0 - values if mode == "max" else values


def from_error(values: Any, mode: str) -> Any:
    return 1.0 - values if mode == "max" else values


def matrix(records: list[dict[str, Any]], sizes: list[float], stage: str) -> np.ndarray:
    """``stage`` (val or train) scores, sizes x folds; NaN where a fold has none."""
    folds = 1 + max(r["fold"] for r in records)
    out = np.full((len(sizes), folds), np.nan)
    for r in records:
        if r[stage] is not None:
            out[sizes.index(r["size"]), r["fold"]] = r[stage]
    return out


def by_size(records: list[dict[str, Any]], sizes: list[float]) -> list[dict[str, Any]]:
    """Per size: mean training samples, mean and standard deviation of each stage's score."""
    rows = []
    for share in sizes:
        mine = [r for r in records if r["size"] == share]
        row: dict[str, Any] = {
            "size": share,
            "n_train": round(np.mean([r["n_train"] for r in mine])),
        }
        for stage in ("val", "train"):
            values = [r[stage] for r in mine if r[stage] is not None]
            row[f"{stage}_mean"] = round(float(np.mean(values)), 6) if values else None
            row[f"{stage}_std"] = round(float(np.std(values)), 6) if len(values) > 1 else None
        row["folds"] = sum(r["val"] is not None for r in mine)
        rows.append(row)
    return rows


def twice_line(curve: Curve | None, metric: str, mode: str, n: float) -> tuple[str, dict | None]:
    """The line on twice the data, and its numbers (None without a fit)."""
    if curve is None:
        return (
            f"no power law: it needs {MIN_SIZES} sizes with finished folds and a fit that "
            "converges; the measured points are in learning_curve.csv",
            None,
        )
    sign = 1.0 if mode == "max" else -1.0  # an error drop is a metric gain where higher is better
    gain, (low, high) = curve.gain(n), curve.gain_interval(n)
    change, interval = sign * gain, sorted((sign * low, sign * high))
    now, then = from_error(curve.error_at(n), mode), from_error(curve.error_at(2 * n), mode)
    expected_interval = sorted(from_error(np.array(curve.interval_at(2 * n)), mode).tolist())
    numbers = {
        "n": round(n),
        "n_twice": round(2 * n),
        "fitted_now": now,
        "expected": then,
        "expected_interval": expected_interval,
        "change": change,
        "interval": interval,
        "noise": curve.noise,
        "flat": curve.flat,
    }
    span = f"95% interval {interval[0]:+.4f} to {interval[1]:+.4f}"
    if curve.flat:
        line = (
            f"flat: twice the data ({round(2 * n)} samples) would change {metric} by "
            f"{change:+.4f} ({span}), within the noise of the folds ({curve.noise:.4f}); more "
            "of the same data is unlikely to help"
        )
    else:
        line = (
            f"twice the data ({round(2 * n)} samples): {metric} {now:.4f} -> {then:.4f} "
            f"expected ({change:+.4f}, {span})"
        )
    return line, numbers


def summarize(
    records: list[dict[str, Any]], candidate: str, metric: str, mode: str, seed: int = 0
) -> dict[str, Any]:
    """Everything learning_curve.json holds: the points, each size's means, the fit, the line."""
    sizes = sorted({r["size"] for r in records})
    table = by_size(records, sizes)
    n = np.array([row["n_train"] for row in table], float)
    curve = fit_curve(n, to_error(matrix(records, sizes, "val"), mode), seed)
    measured = [row["n_train"] for row in table if row["folds"]]
    line, twice = twice_line(curve, metric, mode, float(max(measured, default=n.max())))
    fit = None
    if curve is not None:
        a, b, c = curve.params
        error = "1 - " + metric if mode == "max" else metric
        formula = f"{error} = a * n^-b + c"
        fit = {"a": a, "b": b, "c": c, "formula": formula, "bootstraps": len(curve.boots)}
    return {
        "candidate": candidate,
        "metric": metric,
        "mode": mode,
        "sizes": sizes,
        "by_size": table,
        "points": records,
        "fit": fit,
        "twice": twice,
        "line": line,
    }


def write_outputs(summary: dict[str, Any], out: Path, notes: list[str]) -> list[Path]:
    """The four files of a learning curve in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    json_file, csv_file, png_file, html_file = (out / name for name in FILES)
    write_json(json_file, summary)
    metric = summary["metric"]
    with csv_file.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(("size", "fold", "n_train", f"train_{metric}", f"val_{metric}", "error"))
        for r in summary["points"]:
            values = (r["size"], r["fold"], r["n_train"], r["train"], r["val"], r["error"] or "")
            writer.writerow(values)
    draw(summary, png_file)
    columns = ["size", "training samples", f"train {metric}", "sd", f"val {metric}", "sd", "folds"]
    keys = ("n_train", "train_mean", "train_std", "val_mean", "val_std", "folds")
    rows = [[f"{r['size']:.0%}", *(r[k] for k in keys)] for r in summary["by_size"]]
    page = render(
        "selection/learning_curve.html",
        title=f"Learning curve: {summary['candidate']}",
        line=summary["line"],
        notes=notes,
        columns=columns,
        rows=rows,
        fit=summary["fit"],
        figure=png_file,
    )
    html_file.write_text(page)
    return [json_file, csv_file, png_file, html_file]


def draw(summary: dict[str, Any], path: Path) -> None:
    """Train and val metric against training samples (log x), mean and one standard deviation
    over folds, with the fitted power law carried to twice the data."""
    from mlcycle.reports.figures import plt, save

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    table = [r for r in summary["by_size"] if r["folds"]]
    for stage, style in (("train", "-o"), ("val", "-s")):
        kept = [r for r in table if r[f"{stage}_mean"] is not None]
        if not kept:
            continue
        x = np.array([r["n_train"] for r in kept], float)
        mean = np.array([r[f"{stage}_mean"] for r in kept], float)
        sd = np.array([r[f"{stage}_std"] or 0.0 for r in kept], float)
        ax.plot(x, mean, style, label=stage, markersize=4)
        ax.fill_between(x, mean - sd, mean + sd, alpha=0.2)
    fit, twice, mode = summary["fit"], summary["twice"], summary["mode"]
    if fit is not None and twice is not None:
        grid = np.geomspace(min(r["n_train"] for r in table), twice["n_twice"], 100)
        fitted = from_error(fit["a"] * grid ** -fit["b"] + fit["c"], mode)
        ax.plot(grid, fitted, "--", color="gray", label="power law (val)")
        low, high = twice["expected_interval"]
        spread = [[max(0.0, twice["expected"] - low)], [max(0.0, high - twice["expected"])]]
        ax.errorbar([twice["n_twice"]], [twice["expected"]], yerr=spread, fmt="D",
                    color="black", capsize=4, label="twice the data (95%)")  # fmt: skip
    ax.set_xscale("log")
    sizes = sorted(
        {int(r["n_train"]) for r in kept} | ({int(twice["n_twice"])} if twice else set())
    )
    ax.set_xticks(sizes, [str(n) for n in sizes], minor=False)  # the sizes trained, as numbers
    ax.set_xticks([], minor=True)
    ax.set(xlabel="training samples (log scale)", ylabel=summary["metric"])
    flat = bool(twice and twice["flat"])
    ax.set_title(f"{summary['candidate']}: learning curve{' (flat)' if flat else ''}")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    save(fig, path)
