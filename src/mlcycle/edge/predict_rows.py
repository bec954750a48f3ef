"""predict.py on CSV files for a table model (``input.kind: table``): each row read as training
read it (``rows.py``), the one ONNX graph scores the rows that read, and each row gets its
prediction or its ``error``; JSON lines, or one CSV file with ``--out``.

A model with class names answers each row's class, its confidence and every class's
probability; a model without answers a number.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .model import UsageError
from .rows import read_rows, table_inputs


def row_answers(outputs: list[np.ndarray], meta: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Each scored row's prediction: the class, its confidence and every class's probability;
    or the predicted number."""
    scores = np.asarray(outputs[0], dtype=np.float64)
    names = [str(n) for n in meta.get("class_names") or []]
    if not names:
        for value in scores.reshape(len(scores), -1)[:, 0]:
            yield {"prediction": round(float(value), 6)}
        return
    for probs in scores:
        first = int(np.argmax(probs))
        yield {
            "class": names[first],
            "confidence": round(float(probs[first]), 6),
            "probabilities": {n: round(float(p), 6) for n, p in zip(names, probs, strict=True)},
        }


def predict_table(
    session: Any, meta: dict[str, Any], path: Path, batch_size: int
) -> list[dict[str, Any]]:
    """One result per data row of the CSV file at ``path``: ``row`` (1 = the first data row),
    the id column when the model has one, and the prediction or ``error``."""
    spec = meta["input"]
    header, rows = read_rows(path)
    feeds, kept, problems = table_inputs(header, rows, spec, f"CSV file '{path}'")
    id_column = spec.get("id_column")
    id_at = header.index(id_column) if id_column in header else None
    results = []
    for position, row in enumerate(rows):
        result: dict[str, Any] = {"row": position + 1}
        if id_at is not None:
            result[id_column] = row[id_at] if id_at < len(row) else ""
        if position in problems:
            result["error"] = problems[position]
        results.append(result)
    for start in range(0, len(kept), batch_size):
        chunk = kept[start : start + batch_size]
        batch = {name: array[start : start + len(chunk)] for name, array in feeds.items()}
        outputs = session.run(None, batch)
        for position, found in zip(chunk, row_answers(outputs, meta), strict=True):
            results[position].update(found)
    return results


def write_table_csv(results: list[dict[str, Any]], meta: dict[str, Any], out: Path) -> None:
    """The results as a CSV file: row, id, prediction (or class, confidence and per-class
    probabilities), error."""
    id_column = meta["input"].get("id_column")
    names = [str(n) for n in meta.get("class_names") or []]
    head = ["row", *([id_column] if id_column else [])]
    head += ["class", "confidence", *(f"p_{n}" for n in names)] if names else ["prediction"]
    head.append("error")
    with out.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(head)
        for r in results:
            line = [r["row"], *([r.get(id_column, "")] if id_column else [])]
            if names:
                line += [r.get("class", ""), r.get("confidence", "")]
                line += [r.get("probabilities", {}).get(n, "") for n in names]
            else:
                line.append(r.get("prediction", ""))
            line.append(r.get("error", ""))
            writer.writerow(line)


def table_session(path: Path) -> Any:
    if path.suffix != ".onnx":
        raise UsageError(
            f"a table model is one ONNX file; pass RUN/export/model.onnx, not '{path}'"
        )
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def report(
    results: list[tuple[Path, list[dict[str, Any]]]], meta: dict[str, Any], out: str | None
) -> int:
    """The results as JSON lines (with each row's file when there are several) or the --out
    CSV file; exit code 1 when some rows could not be scored."""
    failed = total = 0
    for path, found in results:
        total += len(found)
        failed += sum("error" in r for r in found)
        if out:
            write_table_csv(found, meta, Path(out))
            continue
        for result in found:
            shown = {"file": str(path), **result} if len(results) > 1 else result
            print(json.dumps(shown), flush=True)
    if out:
        print(f"wrote {total - failed} prediction(s) to {out}", file=sys.stderr)
    if failed:
        print(
            f"error: {failed} of {total} rows could not be scored (see their 'error')",
            file=sys.stderr,
        )
    return 1 if failed else 0


def main_table(args: argparse.Namespace, meta: dict[str, Any], model_path: Path) -> int:
    """predict.py on CSV files for a table model: JSON lines (or --out CSV), exit 1 when some
    rows could not be scored, 2 when a file cannot be used at all."""
    files = [Path(p) for p in [*(args.csv or []), *args.inputs]]
    try:
        if not files:
            raise UsageError("a table model predicts CSV rows: pass --csv ROWS.csv")
        if args.out and len(files) > 1:
            raise UsageError("--out writes one CSV file; pass one --csv file with it")
        session = table_session(model_path)
        results = [(path, predict_table(session, meta, path, args.batch_size)) for path in files]
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return report(results, meta, args.out)
