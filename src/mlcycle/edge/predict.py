"""Predict with an exported model; one JSON line per image (or CSV row).

    python -m edge RUN/export/model.onnx IMAGE_OR_FOLDER ... [--top-k 3]
    python -m edge SEG_RUN/export/model.onnx IMAGES ... --masks-dir NEW_FOLDER
    python -m edge DET_RUN/export/model.onnx IMAGES ... [--min-score 0.5]
    python -m edge TABLE_RUN/export/model.onnx --csv ROWS.csv [--out PREDICTIONS.csv]

``python -m edge`` runs the ``edge`` folder copied alone onto a device (beside it: nothing of
mlcycle; numpy, pillow and onnxruntime, or torch for a ``.ts`` model). In the repository,
``python scripts/predict.py`` runs the same with mlcycle installed, which adds ``--db`` and
``--query`` (the prediction store).

What is printed follows the output form ``model.json`` declares (``forms.py``): the top-k
classes; a mask PNG per image in --masks-dir (a new or empty folder) and the share of pixels
per class; the boxes scoring at least --min-score, in the image's own pixels; the labels at or
above the threshold with every label's probability; any other form, the raw outputs. A table
model (``input.kind: table``) scores the rows of CSV files (``predict_rows.py``).

Exit code: 0 when every image (row) was predicted, 1 when some could not be read, 2 on bad
usage.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from .decision import with_threshold
from .decode import IMAGE_EXTENSIONS, load_image, preprocess
from .form import Form, Options
from .forms import form_for
from .model import Model, UsageError, is_batched, load_model, outputs_per_image, read_meta
from .options import Parser
from .predict_rows import main_table


class Recorder(Protocol):
    """What ``--db`` records into (mlcycle's prediction store, given by scripts/predict.py)."""

    recorded: int

    def unpredicted(self, paths: list[Path]) -> tuple[list[Path], int]: ...
    def record(self, result: dict[str, Any], latency_ms: float) -> str: ...
    def close(self) -> None: ...


OpenRecorder = Callable[[str, Path, dict[str, Any]], Recorder]  # (url, model path, model.json)
ReadQuery = Callable[[str | None, str | None], list[Path]]  # (query, url) -> image paths
NEEDS_MLCYCLE = "needs mlcycle installed: run scripts/predict.py in the repository"


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="predict.py", description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="model.onnx, model.int8.onnx or model.ts from RUN/export")
    p.add_argument("inputs", nargs="*", help="image files or folders of images")
    p.add_argument("--top-k", type=int, default=3, help="classes listed per image (3)")
    p.add_argument("--batch-size", type=int, default=32, help="images per model call (32)")
    p.add_argument("--masks-dir", help="mask outputs: a new or empty folder for the mask PNGs")
    p.add_argument(
        "--min-score", type=float, default=0.5, help="box outputs: lowest score listed (0.5)"
    )
    p.add_argument(
        "--threshold",
        type=float,
        help="label outputs: lowest probability of a listed label; a binary classifier: the "
        "positive class's decision threshold (default: model.json's)",
    )
    p.add_argument(
        "--db",
        help="record every prediction in this prediction store (a SQLAlchemy URL, e.g. "
        "sqlite:///predictions.db); needs mlcycle installed",
    )
    p.add_argument(
        "--skip-predicted",
        action="store_true",
        help="with --db: skip images this model version already predicted (for cron jobs)",
    )
    p.add_argument(
        "--query",
        help="take the images from this SQL query's 'path' column (with --query-url) "
        "instead of, or besides, the inputs",
    )
    p.add_argument("--query-url", help="the database --query runs on (a SQLAlchemy URL)")
    p.add_argument(
        "--csv",
        action="append",
        help="a table model: a CSV file of rows to score (repeatable; a .csv input works too)",
    )
    p.add_argument("--out", help="a table model: write the predictions to this CSV file")
    return p


def collect(inputs: list[str]) -> Iterator[Path]:
    """Files as given; folders expanded to their image files (recursively, sorted)."""
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            yield from sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in IMAGE_EXTENSIONS
                and not p.name.startswith(".")
            )
        else:
            yield path


def read_images(
    paths: list[Path], spec: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[np.ndarray], list[int], list[tuple[int, int]]]:
    """One result per path (``error`` for unreadable files); the model inputs of the readable
    ones, their result slots and their original (height, width)."""
    results: list[dict[str, Any]] = []
    inputs, slots, sizes = [], [], []
    for path in paths:
        try:
            image = load_image(path, int(spec["channels"]))
            inputs.append(preprocess(image, spec))
            sizes.append(image.shape[:2])
            slots.append(len(results))
            results.append({"path": str(path)})
        except FileNotFoundError:
            results.append({"path": str(path), "error": "file not found"})
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            results.append({"path": str(path), "error": f"not a readable image: {reason}"})
    return results, inputs, slots, sizes


def answer_paths(model: Model, form: Form, paths: list[Path]) -> list[dict[str, Any]]:
    """One JSON line per path: its answer in the model's output form, or its ``error``."""
    results, inputs, slots, sizes = read_images(paths, form.meta["input"])
    if inputs:
        outputs = outputs_per_image(model, inputs, is_batched(form.meta), form.batch_axis)
        for slot, answer in zip(slots, form.answers(outputs, sizes), strict=True):
            results[slot].update(form.line(answer, Path(results[slot]["path"])))
    return results


def new_folder(path: Path | None) -> Path:
    """``--masks-dir``, created; an existing folder must be empty, so nothing is overwritten."""
    if path is None:
        raise UsageError("this model answers masks, written as PNGs: pass --masks-dir NEW_FOLDER")
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise UsageError(f"--masks-dir '{path}' exists and is not empty; pass a new folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create --masks-dir '{path}': {exc.strerror}") from exc
    return path


def image_form(args: argparse.Namespace, meta: dict[str, Any]) -> Form:
    """The model's output form with the options given; a mask form's folder is created."""
    options = Options(args.top_k, args.min_score, args.threshold)
    form = form_for(meta, options)
    if form.writes_files:
        options.masks_dir = new_folder(Path(args.masks_dir) if args.masks_dir else None)
    if not 0 <= args.min_score <= 1:
        raise UsageError("--min-score must be in [0, 1]")
    return form


def image_paths(
    args: argparse.Namespace,
    meta: dict[str, Any],
    open_recorder: OpenRecorder | None,
    read_query: ReadQuery | None,
) -> tuple[list[Path], Recorder | None]:
    """The images to predict (inputs, then --query's), and the store to record into (--db)."""
    paths = list(collect(args.inputs))
    if args.query or args.query_url:
        if read_query is None:
            raise UsageError(f"--query {NEEDS_MLCYCLE}")
        paths += read_query(args.query, args.query_url)
    if args.db:
        if open_recorder is None:
            raise UsageError(f"--db {NEEDS_MLCYCLE}")
        return paths, open_recorder(args.db, Path(args.model), meta)
    if args.skip_predicted:
        raise UsageError("--skip-predicted needs --db, the store that knows what was predicted")
    return paths, None


def predict_images(
    model: Model, form: Form, paths: list[Path], batch_size: int, recorder: Recorder | None
) -> int:
    """Print a line per image, recording each answer when a store is given; how many failed."""
    failed = 0
    for start in range(0, len(paths), batch_size):
        clock = time.perf_counter()
        results = answer_paths(model, form, paths[start : start + batch_size])
        per_image_ms = (time.perf_counter() - clock) * 1000 / max(1, len(results))
        for result in results:
            failed += "error" in result
            if recorder is not None and "error" not in result:
                result["prediction_id"] = recorder.record(result, per_image_ms)
            print(json.dumps(result), flush=True)
    return failed


def open_model(args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    model_path = Path(args.model)
    if not model_path.is_file():
        raise UsageError(f"model '{model_path}' does not exist; pass a file from RUN/export")
    if args.top_k < 1 or args.batch_size < 1:
        raise UsageError("--top-k and --batch-size must be at least 1")
    if args.threshold is not None and not 0 <= args.threshold <= 1:
        raise UsageError("--threshold must be in [0, 1]")
    try:  # a binary classifier decides at --threshold instead of model.json's threshold
        return model_path, with_threshold(read_meta(model_path), args.threshold)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


# Models by their declared input kind, besides images: a table model predicts CSV rows.
INPUTS = {"table": main_table}


def main(
    argv: list[str] | None = None,
    open_recorder: OpenRecorder | None = None,
    read_query: ReadQuery | None = None,
) -> int:
    """predict.py; ``open_recorder`` and ``read_query`` add --db and --query (mlcycle's)."""
    args = parser().parse_args(argv)
    try:
        model_path, meta = open_model(args)
        other = INPUTS.get((meta.get("input") or {}).get("kind"))
        if other is not None:
            return other(args, meta, model_path, open_recorder)
        form = image_form(args, meta)
        model = load_model(model_path)
        paths, recorder = image_paths(args, meta, open_recorder, read_query)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if recorder is not None and args.skip_predicted:
        paths, skipped = recorder.unpredicted(paths)
        print(f"skipped {skipped} image(s) this model version already predicted", file=sys.stderr)
        if not paths:
            recorder.close()
            return 0
    if not paths:
        print(f"error: no image files in {' '.join(args.inputs)}", file=sys.stderr)
        return 2
    failed = predict_images(model, form, paths, args.batch_size, recorder)
    if recorder is not None:
        recorder.close()
        print(f"recorded {recorder.recorded} prediction(s) in {args.db}", file=sys.stderr)
    if failed:
        print(f"error: {failed} of {len(paths)} files could not be predicted", file=sys.stderr)
    return 1 if failed else 0


def run(argv: list[str] | None = None, **hooks: Any) -> int:
    """``main``'s exit code, quiet when the reader of stdout goes away (piped into head)."""
    try:
        return main(argv, **hooks)
    except BrokenPipeError:
        sys.stderr.close()
        return 1
