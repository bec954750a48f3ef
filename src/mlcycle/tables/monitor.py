"""``reference.json`` for a table export: what the monitor compares a table model's production
rows with (``input_kind: table``; the checks are ``mlcycle.monitor.columns``).

* ``splits.train`` / ``splits.val``: per feature column (as ``model.json``'s ``input.columns``
  names them) its missing rate, and its distribution: numbers and dates in quantile bins with
  a sample for KS (``monitor/binning.py``, as the image statistics), categories, booleans and
  text as frequencies. The rows are written as CSV and read back as ``predict.py`` reads them.
* ``predictions``: the exported graph on the val rows, run as predict.py runs it.
  Classification: predicted-class counts, the confidence distribution, accuracy, macro F1 and
  per-class precision / recall / F1 (the keys of the images' ``classes`` summary).
  Regression: the distribution of the predicted values, RMSE, MAE and R2.
* ``columns``: the feature columns, most important first. Importance is permutation
  importance on (at most :data:`IMPORTANCE_ROWS`) val rows through the exported graph: how much
  the loss (log loss; squared error over the target's variance) grows when one column's values
  are shuffled among the rows, the mean of :data:`REPEATS` shuffles.
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from mlcycle.edge.rows import read_rows, table_inputs
from mlcycle.monitor.binning import summarize, unit_histogram
from mlcycle.monitor.columns import split_columns
from mlcycle.monitor.drift import class_counts, classification_metrics
from mlcycle.monitor.estimate import reliability
from mlcycle.monitor.reference import FILE, FORMAT_VERSION, SPLITS, dumps, model_version

MAX_ROWS = 10_000  # rows a split at most (a fixed random sample)
IMPORTANCE_ROWS = 1000
REPEATS = 2


def split_text(data: Any, split: str) -> tuple[list[str], list[list[str]], np.ndarray, int]:
    """A split's rows as CSV text (at most :data:`MAX_ROWS`), their targets, and its size."""
    frame = data.frame(split)
    y = np.asarray(data.arrays(split)[1])
    picked = np.arange(len(frame))
    if len(frame) > MAX_ROWS:
        picked = np.sort(np.random.default_rng(0).choice(len(frame), MAX_ROWS, replace=False))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{split}.csv"
        frame.iloc[picked].to_csv(path, index=False)
        header, rows = read_rows(path)
    return header, rows, y[picked], len(frame)


def scores(session: Any, header: list[str], rows: list[list[str]], spec: dict) -> tuple:
    """The graph's outputs on the rows that read, and their positions."""
    feeds, kept, _ = table_inputs(header, rows, spec)
    if not kept:
        return np.zeros((0, 1)), kept
    return np.asarray(session.run(None, feeds)[0], dtype=np.float64), kept


def loss(out: np.ndarray, y: np.ndarray, classes: bool) -> float:
    """Mean log loss of the true class, or squared error over the target's variance."""
    if classes:
        picked = out[np.arange(len(y)), y.astype(np.int64)]
        return float(-np.log(np.clip(picked, 1e-7, 1.0)).mean())
    error = out.reshape(len(y), -1)[:, 0] - y.astype(np.float64)
    return float((error**2).mean() / (np.var(y) or 1.0))


def importance(session: Any, header: list[str], rows: list[list[str]], y: np.ndarray,
               meta: dict) -> dict[str, float]:  # fmt: skip
    """Permutation importance of each feature column on the val rows (module docstring)."""
    spec, classes = meta["input"], bool(meta.get("class_names"))
    rows, y = rows[:IMPORTANCE_ROWS], y[:IMPORTANCE_ROWS]
    out, kept = scores(session, header, rows, spec)
    base = loss(out, y[kept], classes)
    rng = np.random.default_rng(0)
    found = {}
    for column in spec["columns"]:
        at = header.index(column["name"])
        drops = []
        for _ in range(REPEATS):
            order = rng.permutation(len(rows))
            shuffled = [
                [*r[:at], rows[j][at], *r[at + 1 :]] for r, j in zip(rows, order, strict=True)
            ]
            out, kept = scores(session, header, shuffled, spec)
            drops.append(loss(out, y[kept], classes) - base)
        found[column["name"]] = round(float(np.mean(drops)), 6)
    return found


def predictions(out: np.ndarray, y: np.ndarray, names: list[str]) -> dict[str, Any]:
    """The val predictions' summary, as the monitor's prediction checks read it."""
    if not names:
        pred = out.reshape(len(out), -1)[:, 0]
        error = pred - y.astype(np.float64)
        total = float(((y - y.mean()) ** 2).sum()) or 1.0
        return {
            "rows": len(pred),
            "prediction": summarize(np.round(pred, 6)),
            "rmse": round(float(np.sqrt((error**2).mean())), 6),
            "mae": round(float(np.abs(error).mean()), 6),
            "r2": round(1.0 - float((error**2).sum()) / total, 6),
        }
    found = out.argmax(axis=1)
    predicted = [names[int(i)] for i in found]
    conf = np.round(out[np.arange(len(out)), found], 6)  # as the server reports it
    metrics = classification_metrics([names[int(i)] for i in y], predicted, names)
    return {
        "rows": len(predicted),
        "classes": class_counts(predicted, names),
        "confidence": {**summarize(conf), "histogram": unit_histogram(conf)},
        "labelled": metrics.pop("rows"),
        **metrics,
        # what the monitor's estimate without labels calibrates served confidences by
        "reliability": reliability(conf, found == y.astype(np.int64), predicted),
    }


def build_reference(out: Path, data: Any, meta: dict[str, Any]) -> dict[str, Any]:
    """The content of ``reference.json`` for the table model exported into ``out``."""
    import onnxruntime as ort

    path = out / meta["files"]["onnx"]
    spec = meta["input"]
    kinds = {c["name"]: c["kind"] for c in spec["columns"]}
    splits, val = {}, None
    for split in SPLITS:
        header, rows, y, total = split_text(data, split)
        splits[split] = {
            "rows": len(rows),
            "of": total,
            "columns": split_columns(header, rows, kinds),
        }
        val = (header, rows, y)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    header, rows, y = val
    out_val, kept = scores(session, header, rows, spec)
    names = [str(n) for n in meta.get("class_names") or []]
    ranked = importance(session, header, rows, y, meta) if len(kept) else {}
    columns = [{"name": n, "kind": k, "importance": ranked.get(n)} for n, k in kinds.items()]
    columns.sort(key=lambda c: -(c["importance"] or 0.0))
    return {
        "format_version": FORMAT_VERSION,
        "task": meta.get("task"),
        "kind": (meta.get("output") or {}).get("kind"),
        "input_kind": spec.get("kind", "table"),
        "model": path.name,
        "model_sha256": model_version(path),
        "class_names": names,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "max_rows_per_split": MAX_ROWS,
        "columns": columns,
        "importance": {
            "method": "permutation on the val rows through the exported graph",
            "loss": "log loss" if names else "squared error / variance of the target",
            "rows": min(len(rows), IMPORTANCE_ROWS),
            "repeats": REPEATS,
        },
        "splits": splits,
        "predictions": predictions(out_val, y[kept], names) if len(kept) else None,
    }


def write_reference(out: Path, data: Any, meta: dict[str, Any]) -> str:
    """Write ``out/reference.json``; returns its name, for model.json's ``reference``."""
    reference = build_reference(out, data, meta)
    (out / FILE).write_text(dumps(reference) + "\n")
    counts = ", ".join(f"{reference['splits'][s]['rows']} {s}" for s in SPLITS)
    top = ", ".join(c["name"] for c in reference["columns"][:3])
    print(f"wrote {out / FILE} (columns of {counts} rows; most important: {top})")
    return FILE
