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
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .decision import decide
from .form import Form, Stored
from .model import UsageError
from .rows import feeds_for, read_rows, read_table
from .table_rows import inputs_sha256, row_inputs


class RowRecorder(Protocol):
    """What ``--db`` records table rows into (mlcycle's prediction store)."""

    recorded: int

    def predicted(self, hashes: list[str]) -> set[str]: ...
    def record_row(
        self, result: dict[str, Any], inputs: dict[str, Any], latency_ms: float
    ) -> str: ...
    def close(self) -> None: ...


def row_answers(outputs: list[np.ndarray], meta: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Each scored row's prediction: the class (the most probable, or the one a binary
    ``output.decision`` threshold picks), its confidence and every class's probability; or the
    predicted number."""
    scores = np.asarray(outputs[0], dtype=np.float64)
    names = [str(n) for n in meta.get("class_names") or []]
    if not names:
        for value in scores.reshape(len(scores), -1)[:, 0]:
            yield {"prediction": round(float(value), 6)}
        return
    decision = (meta.get("output") or {}).get("decision")
    for probs in scores:
        first = decide(probs, decision)
        yield {
            "class": names[first],
            "confidence": round(float(probs[first]), 6),
            "probabilities": {n: round(float(p), 6) for n, p in zip(names, probs, strict=True)},
        }


class TableForm(Form):
    """A table model's answers (``output.kind: table``): a row's class, its confidence and
    every class's probability, or the predicted number. The store keeps the class (or the
    number), the confidence and the classes by probability as ``top_k``."""

    name = "table"

    def __init__(self, meta: dict[str, Any], options: Any = None) -> None:
        super().__init__(meta, options)
        self.feedback_is_class = bool(self.names)  # a regression's true label is a number

    def rows(self, outputs: list[np.ndarray]) -> list[dict[str, Any]]:
        """The answers of one graph call on a batch of rows."""
        return list(row_answers(outputs, self.meta))

    def stored(self, result: dict[str, Any]) -> Stored:
        if "class" not in result:
            return repr(float(result["prediction"])), None, None
        ranked = sorted(result["probabilities"].items(), key=lambda item: -item[1])
        top_k = [{"class": name, "probability": p} for name, p in ranked]
        return str(result["class"]), result.get("confidence"), top_k

    def counted(self, answer: dict[str, Any]) -> str:
        return str(answer.get("class", "(number)"))


def predict_table(
    session: Any,
    meta: dict[str, Any],
    path: Path,
    batch_size: int,
    recorder: RowRecorder | None = None,
    skip_predicted: bool = False,
) -> list[dict[str, Any]]:
    """One result per data row of the CSV file at ``path``: ``row`` (1 = the first data row),
    the id column when the model has one, and the prediction or ``error``. With a
    ``recorder``, each scored row is recorded (its ``prediction_id``); ``skip_predicted``
    marks ``skipped`` the rows whose features it already holds, and scores none of them."""
    spec = meta["input"]
    header, rows = read_rows(path)
    reads, kept, problems = read_table(header, rows, spec, f"CSV file '{path}'")
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
    inputs = [row_inputs(read) for read in reads]
    if recorder is not None and skip_predicted:
        done = recorder.predicted([inputs_sha256(i) for i in inputs])
        fresh = [j for j, i in enumerate(inputs) if inputs_sha256(i) not in done]
        for j in set(range(len(kept))) - set(fresh):
            results[kept[j]]["skipped"] = True
        reads, kept, inputs = (
            [reads[j] for j in fresh],
            [kept[j] for j in fresh],
            [inputs[j] for j in fresh],
        )
    for start in range(0, len(kept), batch_size):
        clock = time.perf_counter()
        outputs = session.run(None, feeds_for(reads[start : start + batch_size], spec))
        chunk = kept[start : start + batch_size]
        per_row_ms = (time.perf_counter() - clock) * 1000 / len(chunk)
        for j, found in enumerate(row_answers(outputs, meta)):
            result = results[chunk[j]]
            result.update(found)
            if recorder is not None:
                result["prediction_id"] = recorder.record_row(result, inputs[start + j], per_row_ms)
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
    CSV file; exit code 1 when some rows could not be scored. Skipped rows are counted only."""
    failed = total = skipped = 0
    for path, every in results:
        found = [r for r in every if not r.get("skipped")]
        skipped += len(every) - len(found)
        total += len(found)
        failed += sum("error" in r for r in found)
        if out:
            write_table_csv(found, meta, Path(out))
            continue
        for result in found:
            shown = {"file": str(path), **result} if len(results) > 1 else result
            print(json.dumps(shown), flush=True)
    if skipped:
        print(f"skipped {skipped} row(s) this model version already predicted", file=sys.stderr)
    if out:
        print(f"wrote {total - failed} prediction(s) to {out}", file=sys.stderr)
    if failed:
        print(
            f"error: {failed} of {total} rows could not be scored (see their 'error')",
            file=sys.stderr,
        )
    return 1 if failed else 0


OpenRowRecorder = Callable[[str, Path, dict[str, Any]], RowRecorder]


def row_recorder(
    args: argparse.Namespace, meta: dict[str, Any], model_path: Path, opener: Any
) -> RowRecorder | None:
    """The store --db records into; --query and a --skip-predicted without --db refused."""
    if args.query or args.query_url:
        raise UsageError("--query lists image paths; a table model reads rows: pass --csv")
    if not args.db:
        if args.skip_predicted:
            raise UsageError("--skip-predicted needs --db, the store that knows what was predicted")
        return None
    if opener is None:
        raise UsageError("--db needs mlcycle installed: run scripts/predict.py in the repository")
    return opener(args.db, model_path, meta)


def main_table(
    args: argparse.Namespace,
    meta: dict[str, Any],
    model_path: Path,
    open_recorder: OpenRowRecorder | None = None,
) -> int:
    """predict.py on CSV files for a table model: JSON lines (or --out CSV), exit 1 when some
    rows could not be scored, 2 when a file cannot be used at all. With --db (``open_recorder``,
    mlcycle's store), each scored row is recorded; --skip-predicted skips rows it holds."""
    files = [Path(p) for p in [*(args.csv or []), *args.inputs]]
    recorder = None
    try:
        if not files:
            raise UsageError("a table model predicts CSV rows: pass --csv ROWS.csv")
        if args.out and len(files) > 1:
            raise UsageError("--out writes one CSV file; pass one --csv file with it")
        session = table_session(model_path)
        recorder = row_recorder(args, meta, model_path, open_recorder)
        results = [
            (
                path,
                predict_table(session, meta, path, args.batch_size, recorder, args.skip_predicted),
            )
            for path in files
        ]
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if recorder is not None:
            recorder.close()
    if recorder is not None:
        print(f"recorded {recorder.recorded} prediction(s) in {args.db}", file=sys.stderr)
    return report(results, meta, args.out)
