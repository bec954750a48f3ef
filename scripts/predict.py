#!/usr/bin/env python
"""Predict with an exported model; one JSON line per image (``scripts/predict.py`` links here).

    python scripts/predict.py RUN/export/model.onnx IMAGE_OR_FOLDER ... [--top-k 3]
    python scripts/predict.py SEG_RUN/export/model.onnx IMAGES ... --masks-dir NEW_FOLDER
    python scripts/predict.py DET_RUN/export/model.onnx IMAGES ... [--min-score 0.5]
    python scripts/predict.py TABLE_RUN/export/model.onnx --csv ROWS.csv [--out PREDICTIONS.csv]

What is printed follows ``model.json``: its ``output.kind`` when the exporter wrote one, else
its ``task`` (``HANDLERS`` below). Classification lists the top-k classes. Segmentation writes
one mask PNG per image (class indices, the image's own size) into --masks-dir, a new or empty
folder, and lists the share of pixels per class. Detection lists boxes in the image's own pixels
(x1, y1, x2, y2) with their class and score, those scoring at least --min-score. ``multilabel``
(a task added by a plugin, for one) lists every label's probability and the labels at or above
the threshold (``output.threshold``, or --threshold). Any other task gets its raw outputs,
per image, so a new task needs no change here: its exporter describes its output instead.
A table model (``input.kind: table``) scores the rows of CSV files (``--csv`` or a .csv
input): each row is read as training read it (the columns and kinds in ``model.json``; dates
split into their parts), a row with a value of the wrong type gets an ``error`` and the rest
are scored; a missing column stops with exit code 2 naming it.

Standalone on purpose, so it can be copied to a device: it needs numpy, pillow and onnxruntime
(or torch for a ``.ts`` model) and reads the preprocessing from ``model.json`` beside the model.
It does not import mlcycle, lightning, albumentations or OpenCV; the resize below reproduces
OpenCV's bilinear resize (what training used) bit for bit on uint8 images.

Exit code: 0 when every image (row) was predicted, 1 when some could not be read, 2 on bad
usage.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

IMAGE_EXTENSIONS = (
    ".png",
    ".jpg",
    ".jpeg",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".pgm",
)


class UsageError(Exception):
    """A problem with the command line or the model files: exit code 2."""


# --- decoding: mlcycle.data.images uses these too (training decodes as the device does) ----


def _to_8bit(img: Image.Image) -> Image.Image:
    """High bit-depth grayscale (I;16, I, F) scaled to 0..255 instead of clipped."""
    arr = np.asarray(img, dtype=np.float64)
    if img.mode.startswith("I;16"):
        arr = arr / 257.0
    else:
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), mode="L")


def to_array(img: Image.Image, channels: int) -> np.ndarray:
    """Any PIL mode to an HxWxC uint8 array with ``channels`` (1 or 3)."""
    img = ImageOps.exif_transpose(img)
    if img.mode.startswith("I") or img.mode == "F":
        img = _to_8bit(img)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img.convert("RGBA"))
    arr = np.asarray(img.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def load_image(path: Path, channels: int) -> np.ndarray:
    if path.stat().st_size == 0:
        raise ValueError("zero bytes")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as img:
            img.load()
            return to_array(img, channels)


# --- resize: OpenCV's INTER_LINEAR on uint8 (fixed point), as albumentations Resize calls it ---


def _taps(src: int, dst: int, clamp: bool) -> tuple[np.ndarray, ...]:
    """Source indices and 11-bit weights along one axis (half-pixel centres)."""
    pos = ((np.arange(dst, dtype=np.float64) + 0.5) * (src / dst) - 0.5).astype(np.float32)
    i0 = np.floor(pos).astype(np.int64)
    frac = pos - i0
    if clamp:  # OpenCV clamps columns; rows are clipped below but keep their weights
        frac[i0 < 0], i0[i0 < 0] = 0, 0
        edge = i0 >= src - 1
        frac[edge], i0[edge] = 0, src - 1
    i1 = np.clip(i0 + 1, 0, src - 1)
    i0 = np.clip(i0, 0, src - 1)
    w1 = np.rint(frac * 2048).astype(np.int64)
    w0 = np.rint((1 - frac) * 2048).astype(np.int64)
    return i0, i1, w0, w1


def resize_bilinear(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an HxWxC uint8 image like ``cv2.resize(img, (width, height), INTER_LINEAR)``."""
    if img.shape[:2] == (height, width):
        return img
    x0, x1, a0, a1 = _taps(img.shape[1], width, clamp=True)
    y0, y1, b0, b1 = _taps(img.shape[0], height, clamp=False)
    src = img.astype(np.int64)
    rows = src[:, x0] * a0[None, :, None] + src[:, x1] * a1[None, :, None]
    b0, b1 = b0[:, None, None], b1[:, None, None]
    # OpenCV's vertical pass in 16-bit fixed point: ((r0 >> 4) * b0 >> 16) + ... then >> 2.
    out = (((rows[y0] >> 4) * b0) >> 16) + (((rows[y1] >> 4) * b1) >> 16)
    return np.clip((out + 2) >> 2, 0, 255).astype(np.uint8)


def preprocess(image: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    """uint8 HxWxC -> float32 CxHxW, resized and normalized as in training."""
    image = resize_bilinear(image, int(spec["height"]), int(spec["width"]))
    mean = np.asarray(spec["mean"], dtype=np.float32) * 255
    std = np.asarray(spec["std"], dtype=np.float32) * 255
    x = (image.astype(np.float32) - mean) / std
    return np.ascontiguousarray(x.transpose(2, 0, 1))


# --- the model ------------------------------------------------------------------------------


def load_model(path: Path, threads: int | None = None) -> Callable[[np.ndarray], list[np.ndarray]]:
    """A function from a float32 NCHW batch to the model's outputs (logits first).

    ``threads``: ONNX Runtime's intra-op threads, which then sleep instead of spinning between
    calls (a server shares its cores with Python); None keeps ONNX Runtime's defaults."""
    if path.suffix == ".onnx":
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x})
    if path.suffix in (".ts", ".pt"):
        import torch

        try:
            import torchvision  # noqa: F401  (registers the NMS operator detectors use)
        except ImportError:
            pass
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(str(path), map_location="cpu").eval()

        def run(x: np.ndarray) -> list[np.ndarray]:
            with torch.no_grad():
                out = module(torch.from_numpy(x))
            return [t.numpy() for t in (out if isinstance(out, tuple | list) else [out])]

        return run
    raise UsageError(f"model '{path}' is neither .onnx nor .ts; pass a file from RUN/export")


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


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


def top_classes(probs: np.ndarray, names: list[str], top_k: int) -> dict[str, Any]:
    """One image's class probabilities as its best class and its top-k list."""
    k = max(1, min(top_k, len(names)))
    order = np.argsort(-probs, kind="stable")[:k]
    best = int(order[0])
    return {
        "class": names[best],
        "index": best,
        "confidence": round(float(probs[best]), 6),
        "top_k": [
            {"class": names[int(i)], "probability": round(float(probs[i]), 6)} for i in order
        ],
    }


def predict(
    model: Callable[[np.ndarray], list[np.ndarray]],
    meta: dict[str, Any],
    paths: list[Path],
    top_k: int,
) -> list[dict[str, Any]]:
    """Classification: the top-k classes of each image."""
    names = meta["class_names"]
    results, inputs, slots, _ = read_images(paths, meta["input"])
    if inputs:
        probs = softmax(np.asarray(model(np.stack(inputs))[0]))
        for slot, p in zip(slots, probs, strict=True):
            results[slot].update(top_classes(p, names, top_k))
    return results


def full_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """A uint8 class-index mask at the image's own size (nearest-neighbour)."""
    return np.asarray(Image.fromarray(mask).resize((width, height), Image.Resampling.NEAREST))


def class_shares(mask: np.ndarray, names: list[str]) -> dict[str, float]:
    """The share of the mask's pixels of each class present."""
    counts = np.bincount(mask.ravel(), minlength=len(names))
    return {names[c]: round(float(counts[c]) / mask.size, 6) for c in np.flatnonzero(counts)}


def segment(
    model: Callable[[np.ndarray], list[np.ndarray]],
    meta: dict[str, Any],
    paths: list[Path],
    masks_dir: Path,
    taken: set[str],
) -> list[dict[str, Any]]:
    """Segmentation: a mask PNG of class indices per image, at the image's own size
    (nearest-neighbour), and the share of pixels of each class."""
    names = meta["class_names"]
    results, inputs, slots, sizes = read_images(paths, meta["input"])
    if inputs:
        classes = np.asarray(model(np.stack(inputs))[0]).argmax(axis=1).astype(np.uint8)
        for slot, mask, (height, width) in zip(slots, classes, sizes, strict=True):
            full = full_mask(mask, height, width)
            stem, n = Path(results[slot]["path"]).stem, 1
            name = f"{stem}.png"
            while name in taken:  # same stem in two folders
                n += 1
                name = f"{stem}_{n}.png"
            taken.add(name)
            Image.fromarray(full).save(masks_dir / name)
            results[slot].update(
                {
                    "mask": str(masks_dir / name),
                    "size": [width, height],
                    "class_shares": class_shares(full, names),
                }
            )
    return results


def boxes_found(
    outputs: list[np.ndarray],
    meta: dict[str, Any],
    height: int,
    width: int,
    min_score: float,
) -> list[dict[str, Any]]:
    """One image's detections (boxes, scores, labels) in the image's own pixels, those scoring
    at least ``min_score``."""
    names, spec = meta["class_names"], meta["input"]
    boxes, scores, labels = (np.asarray(a) for a in outputs[:3])
    scale = np.array([width, height, width, height]) / np.array(
        [spec["width"], spec["height"], spec["width"], spec["height"]], dtype=np.float64
    )
    found = []
    for box, score, label in zip(boxes.reshape(-1, 4) * scale, scores, labels, strict=True):
        if score >= min_score:
            found.append(
                {
                    "class": names[int(label)],
                    "index": int(label),
                    "score": round(float(score), 6),
                    "box": [round(float(v), 2) for v in box],
                }
            )
    return found


def detect(
    model: Callable[[np.ndarray], list[np.ndarray]],
    meta: dict[str, Any],
    paths: list[Path],
    min_score: float,
) -> list[dict[str, Any]]:
    """Detection: boxes in the image's own pixels, with class and score; one image per call
    (the graph's batch is one)."""
    results, inputs, slots, sizes = read_images(paths, meta["input"])
    for x, slot, (height, width) in zip(inputs, slots, sizes, strict=True):
        found = boxes_found(model(x[None]), meta, height, width, min_score)
        results[slot].update({"size": [width, height], "detections": found})
    return results


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))


def tag(
    model: Callable[[np.ndarray], list[np.ndarray]],
    meta: dict[str, Any],
    paths: list[Path],
    threshold: float | None,
) -> list[dict[str, Any]]:
    """Multi-label: each label's probability, and the labels at or above the threshold.

    ``output.labels`` names the outputs (default: ``class_names``); ``output.sigmoid_applied``
    false means the graph returns logits."""
    output = meta.get("output") or {}
    labels = [str(v) for v in output.get("labels") or meta["class_names"]]
    cut = float(output.get("threshold", 0.5)) if threshold is None else threshold
    results, inputs, slots, _ = read_images(paths, meta["input"])
    if inputs:
        probs = np.asarray(model(np.stack(inputs))[0], dtype=np.float64)
        if not output.get("sigmoid_applied", True):
            probs = sigmoid(probs)
        for slot, p in zip(slots, probs, strict=True):
            results[slot].update(
                {
                    "labels": [label for label, v in zip(labels, p, strict=True) if v >= cut],
                    "probabilities": {
                        label: round(float(v), 6) for label, v in zip(labels, p, strict=True)
                    },
                    "threshold": cut,
                }
            )
    return results


def raw(
    model: Callable[[np.ndarray], list[np.ndarray]], meta: dict[str, Any], paths: list[Path]
) -> list[dict[str, Any]]:
    """A task predict.py has no reader for: every output of the graph, per image, as numbers,
    under the names ``model.json`` gives (``output.names``, ``output.name``, else output0, ...)."""
    output = meta.get("output") or {}
    spec = meta["input"]
    results, inputs, slots, _ = read_images(paths, spec)
    if not inputs:
        return results
    batched = str(spec.get("shape", ["batch"])[0]) == "batch"
    chunks = [np.stack(inputs)] if batched else [x[None] for x in inputs]
    per_image: list[list[np.ndarray]] = []
    for chunk in chunks:
        outs = [np.asarray(o) for o in model(chunk)]
        per_image += [[o[i] for o in outs] for i in range(len(chunk))]
    names = output.get("names") or ([output["name"]] if output.get("name") else [])
    for slot, outs in zip(slots, per_image, strict=True):
        keys = [names[i] if i < len(names) else f"output{i}" for i in range(len(outs))]
        values = {
            k: np.round(o.astype(np.float64), 6).tolist() for k, o in zip(keys, outs, strict=True)
        }
        results[slot].update({"task": meta.get("task"), "outputs": values})
    return results


def output_kind(meta: dict[str, Any]) -> str:
    """How to read the model's output: ``output.kind`` when the exporter wrote one, else the task."""
    return str((meta.get("output") or {}).get("kind") or meta.get("task") or "classification")


# Readers by output kind; any other kind prints the raw outputs (``raw``).
HANDLERS: dict[str, Callable[..., list[dict[str, Any]]]] = {
    "classification": lambda model, meta, paths, args: predict(model, meta, paths, args.top_k),
    "segmentation": lambda model, meta, paths, args: segment(
        model, meta, paths, args.masks_dir, args.taken
    ),
    "detection": lambda model, meta, paths, args: detect(model, meta, paths, args.min_score),
    "multilabel": lambda model, meta, paths, args: tag(model, meta, paths, args.threshold),
}


# --- tables: CSV rows read as training read them, then the one ONNX graph ------------------------
# The graph holds the fitted pipeline and the model; what runs here is the pre-step that ONNX
# has no operators for (model.json's input.columns and input.onnx_inputs): each value read as
# its column's kind (as mlcycle.tables.steps.Coerce does) and dates split into their parts.

NA_TEXT = frozenset(  # what pandas.read_csv reads as missing by default
    {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
     "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
)  # fmt: skip
TRUE_TEXT = frozenset({"true", "yes", "y", "t", "1", "1.0", "on"})
FALSE_TEXT = frozenset({"false", "no", "n", "f", "0", "0.0", "off"})
DATE_FORMATS = ("%m/%d/%Y", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%Y/%m/%d", "%Y/%m/%d %H:%M",
                "%Y/%m/%d %H:%M:%S", "%d.%m.%Y", "%d.%m.%Y %H:%M", "%Y%m%d")  # fmt: skip
KIND_WORDS = {"numeric": "a number", "boolean": "true/false", "datetime": "a date"}


def number_text(value: float) -> str:
    """A number as a category is named by it (``3.0`` -> ``"3"``)."""
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def parse_date(text: str) -> Any:
    """``text`` as a naive UTC datetime (ISO 8601 and a few common forms), or None."""
    from datetime import datetime, timezone

    value = None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        for form in DATE_FORMATS:
            try:
                value = datetime.strptime(text, form)
                break
            except ValueError:
                continue
    if value is not None and value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def read_cell(text: str | None, kind: str) -> tuple[Any, str | None]:
    """One CSV value as its column's kind: (value, None), or (None, why it cannot be read).
    Missing values are missing (NaN, ``""`` for categories), not errors."""
    text = (text or "").strip()
    if text in NA_TEXT:
        return ("" if kind in ("categorical", "text") else None), None
    if kind == "numeric":
        try:
            return float(text), None
        except ValueError:
            return None, "not a number"
    if kind == "boolean":
        try:
            word = number_text(float(text))
        except ValueError:
            word = text.lower()
        if word in TRUE_TEXT or word in FALSE_TEXT:
            return (1.0 if word in TRUE_TEXT else 0.0), None
        return None, "not true/false"
    if kind == "datetime":
        value = parse_date(text)
        return (value, None) if value is not None else (None, "not a date")
    try:  # categories written as numbers read as pandas reads a numeric column
        return number_text(float(text)), None
    except (ValueError, OverflowError):
        return text, None


def date_part(value: Any, part: str) -> float:
    if value is None:
        return float("nan")
    if part == "quarter":
        return float((value.month - 1) // 3 + 1)
    if part == "dayofyear":
        return float(value.timetuple().tm_yday)
    if part == "weekday":
        return float(value.weekday())
    return float(getattr(value, part))


def read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """The header and the data rows of a CSV file (UTF-8, a BOM allowed)."""
    import csv

    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except FileNotFoundError as exc:
        raise UsageError(f"CSV file '{path}' does not exist") from exc
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"CSV file '{path}' cannot be read: {exc}") from exc
    if not rows:
        raise UsageError(f"CSV file '{path}' is empty; it needs a header row")
    return [h.strip() for h in rows[0]], rows[1:]


def table_inputs(
    header: list[str], rows: list[list[str]], spec: dict[str, Any], source: str = "the CSV file"
) -> tuple[dict[str, np.ndarray], list[int], dict[int, str]]:
    """The graph's inputs for the rows that can be scored, their positions, and why each other
    row cannot be scored (its first value of the wrong type). A feature column missing from the
    header stops everything (a ``UsageError`` naming it)."""
    where = {name: i for i, name in enumerate(header)}
    columns = spec["columns"]
    for column in columns:
        if column["name"] not in where:
            raise UsageError(
                f"{source} has no column '{column['name']}' ({column['kind']}), which the model "
                f"needs; its columns: {', '.join(header) or 'none'}"
            )
    values: dict[str, list[Any]] = {c["name"]: [] for c in columns}
    kept: list[int] = []
    problems: dict[int, str] = {}
    for position, row in enumerate(rows):
        read = {}
        for column in columns:
            i = where[column["name"]]
            value, problem = read_cell(row[i] if i < len(row) else None, column["kind"])
            if problem is not None:
                shown = row[i].strip()
                shown = shown if len(shown) <= 30 else shown[:27] + "..."
                problems[position] = (
                    f"column '{column['name']}': '{shown}' is {problem} ({column['kind']} column)"
                )
                break
            read[column["name"]] = value
        if position in problems:
            continue
        kept.append(position)
        for name, value in read.items():
            values[name].append(value)
    feeds: dict[str, np.ndarray] = {}
    for item in spec["onnx_inputs"]:
        if "date" in item:
            parts = [date_part(v, item["part"]) for v in values[item["date"]]]
            array = np.asarray(parts, dtype=np.float64)
            if item.get("fn") in ("sin", "cos"):
                angle = 2 * np.pi * (array - item["start"]) / item["period"]
                array = np.sin(angle) if item["fn"] == "sin" else np.cos(angle)
        elif item["type"] == "string":
            array = np.asarray(values[item["column"]], dtype=object)
        else:
            column = values[item["column"]]
            array = np.asarray([np.nan if v is None else v for v in column], dtype=np.float64)
        dtype = object if item["type"] == "string" else np.float64
        feeds[item["name"]] = array.astype(dtype).reshape(-1, 1)
    return feeds, kept, problems


def table_result(outputs: list[np.ndarray], meta: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Each scored row's prediction: the class, its confidence and every class's probability;
    or the predicted number."""
    scores = np.asarray(outputs[0], dtype=np.float64)
    if meta["output"].get("task_kind") == "regression":
        for value in scores.reshape(len(scores), -1)[:, 0]:
            yield {"prediction": round(float(value), 6)}
        return
    names = [str(n) for n in meta["class_names"]]
    for probs in scores:
        best = int(np.argmax(probs))
        yield {
            "class": names[best],
            "confidence": round(float(probs[best]), 6),
            "probabilities": {n: round(float(p), 6) for n, p in zip(names, probs, strict=True)},
        }


def predict_table(
    session: Any, meta: dict[str, Any], path: Path, args: argparse.Namespace
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
    for start in range(0, len(kept), args.batch_size):
        chunk = kept[start : start + args.batch_size]
        batch = {name: array[start : start + len(chunk)] for name, array in feeds.items()}
        outputs = session.run(None, batch)
        for position, found in zip(chunk, table_result(outputs, meta), strict=True):
            results[position].update(found)
    return results


def write_table_csv(results: list[dict[str, Any]], meta: dict[str, Any], out: Path) -> None:
    """The results as a CSV file: row, id, prediction (and per-class probabilities), error."""
    import csv

    id_column = meta["input"].get("id_column")
    regression = meta["output"].get("task_kind") == "regression"
    names = [] if regression else list(meta["class_names"])
    head = ["row", *([id_column] if id_column else [])]
    head += ["prediction"] if regression else ["class", "confidence", *(f"p_{n}" for n in names)]
    head.append("error")
    with out.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(head)
        for r in results:
            line = [r["row"], *([r.get(id_column, "")] if id_column else [])]
            if regression:
                line.append(r.get("prediction", ""))
            else:
                line += [r.get("class", ""), r.get("confidence", "")]
                line += [r.get("probabilities", {}).get(n, "") for n in names]
            line.append(r.get("error", ""))
            writer.writerow(line)


def table_session(path: Path) -> Any:
    if path.suffix != ".onnx":
        raise UsageError(
            f"a table model is one ONNX file; pass RUN/export/model.onnx, not '{path}'"
        )
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


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
        results = {path: predict_table(session, meta, path, args) for path in files}
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = total = 0
    for path, found in results.items():
        total += len(found)
        failed += sum("error" in r for r in found)
        if args.out:
            write_table_csv(found, meta, Path(args.out))
            continue
        for result in found:
            print(
                json.dumps({"file": str(path), **result} if len(files) > 1 else result), flush=True
            )
    if args.out:
        print(f"wrote {total - failed} prediction(s) to {args.out}", file=sys.stderr)
    if failed:
        print(
            f"error: {failed} of {total} rows could not be scored (see their 'error')",
            file=sys.stderr,
        )
    return 1 if failed else 0


def read_meta(model_path: Path) -> dict[str, Any]:
    meta_path = model_path.parent / "model.json"
    if not meta_path.is_file():
        raise UsageError(f"'{meta_path}' is missing; keep model.json beside the model")
    meta = json.loads(meta_path.read_text())
    if meta.get("format_version") != 1 or "input" not in meta:
        raise UsageError(f"'{meta_path}' is not an mlcycle model.json (format_version 1)")
    return meta


def new_folder(path: Path | None) -> Path:
    """``--masks-dir``, created; an existing folder must be empty, so nothing is overwritten."""
    if path is None:
        raise UsageError("a segmentation model writes mask PNGs: pass --masks-dir NEW_FOLDER")
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise UsageError(f"--masks-dir '{path}' exists and is not empty; pass a new folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create --masks-dir '{path}': {exc.strerror}") from exc
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="predict.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="model.onnx, model.int8.onnx or model.ts from RUN/export")
    parser.add_argument("inputs", nargs="*", help="image files or folders of images")
    parser.add_argument("--top-k", type=int, default=3, help="classes listed per image (3)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per model call (32)")
    parser.add_argument("--masks-dir", help="segmentation: a new or empty folder for the mask PNGs")
    parser.add_argument(
        "--min-score", type=float, default=0.5, help="detection: lowest score listed (0.5)"
    )
    parser.add_argument(
        "--threshold",
        type=float,
        help="multi-label: lowest probability of a listed label (default: model.json's)",
    )
    parser.add_argument(
        "--db",
        help="record every prediction in this prediction store (a SQLAlchemy URL, e.g. "
        "sqlite:///predictions.db); needs mlcycle installed",
    )
    parser.add_argument(
        "--skip-predicted",
        action="store_true",
        help="with --db: skip images this model version already predicted (for cron jobs)",
    )
    parser.add_argument(
        "--query",
        help="take the images from this SQL query's 'path' column (with --query-url) "
        "instead of, or besides, the inputs",
    )
    parser.add_argument("--query-url", help="the database --query runs on (a SQLAlchemy URL)")
    parser.add_argument(
        "--csv",
        action="append",
        help="a table model: a CSV file of rows to score (repeatable; a .csv input works too)",
    )
    parser.add_argument("--out", help="a table model: write the predictions to this CSV file")
    args = parser.parse_args(argv)
    try:
        model_path = Path(args.model)
        if not model_path.is_file():
            raise UsageError(f"model '{model_path}' does not exist; pass a file from RUN/export")
        if args.top_k < 1 or args.batch_size < 1:
            raise UsageError("--top-k and --batch-size must be at least 1")
        meta = read_meta(model_path)
        if (meta.get("input") or {}).get("kind") == "table":
            return main_table(args, meta, model_path)
        kind = output_kind(meta)
        args.masks_dir = Path(args.masks_dir) if args.masks_dir else None
        if kind == "segmentation":
            args.masks_dir = new_folder(args.masks_dir)
        if not 0 <= args.min_score <= 1:
            raise UsageError("--min-score must be in [0, 1]")
        if args.threshold is not None and not 0 <= args.threshold <= 1:
            raise UsageError("--threshold must be in [0, 1]")
        model = load_model(model_path)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        paths = list(collect(args.inputs))
        if args.query or args.query_url:
            from mlcycle.serve.batch import query_paths

            paths += query_paths(args.query, args.query_url)
        recorder = None
        if args.db:
            from mlcycle.serve.batch import Recorder

            recorder = Recorder(args.db, model_path, int(meta["input"]["channels"]))
        elif args.skip_predicted:
            raise UsageError("--skip-predicted needs --db, the store that knows what was predicted")
    except (UsageError, ValueError) as exc:  # batch.py's errors are ValueErrors
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
    handler = HANDLERS.get(kind, lambda model, meta, paths, args: raw(model, meta, paths))
    failed, args.taken = 0, set()
    for start in range(0, len(paths), args.batch_size):
        clock = time.perf_counter()
        results = handler(model, meta, paths[start : start + args.batch_size], args)
        per_image_ms = (time.perf_counter() - clock) * 1000 / max(1, len(results))
        for result in results:
            failed += "error" in result
            if recorder is not None and "error" not in result:
                result["prediction_id"] = recorder.record(result, per_image_ms)
            print(json.dumps(result), flush=True)
    if recorder is not None:
        recorder.close()
        print(f"recorded {recorder.recorded} prediction(s) in {args.db}", file=sys.stderr)
    if failed:
        print(f"error: {failed} of {len(paths)} files could not be predicted", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # e.g. piped into head: stop quietly
        sys.stderr.close()
        sys.exit(1)
