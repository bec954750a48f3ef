"""``reference.json``, written by export.py beside the model: what the monitor compares
production with.

* ``splits.train`` / ``splits.val``: the input statistics (``mlcycle.serve.stats``) of the
  ORIGINAL image files, decoded as the server decodes uploads (mlcycle.edge, the model's
  channels), at their own size: per statistic quantile bins, mean, std and a sample for KS.
* ``predictions``: the exported model on val, run through mlcycle.edge and ONNX Runtime (as
  the server runs it), summarized for its output form (``kind``; ``val_predictions.py``).
  classes: predicted-class counts, the confidence distribution, accuracy, macro F1 and
  per-class precision / recall / F1. mask: foreground share per image. boxes: boxes per image
  (score >= 0.5). labels: the label sets found, each label's count, labels per image. Other
  forms: none.

At most :data:`MAX_IMAGES` images per split (a fixed random sample) keep export quick on big
data sets.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from mlcycle.core.errors import UserError
from mlcycle.core.hashing import file_sha256
from mlcycle.edge.decode import load_image
from mlcycle.edge.forms import form_name
from mlcycle.monitor.binning import summarize
from mlcycle.monitor.val_predictions import SUMMARIES, ValPredictions
from mlcycle.serve.stats import STATS, image_stats

FILE = "reference.json"
FORMAT_VERSION = 1
MAX_IMAGES = 10_000
SPLITS = ("train", "val")


def model_version(path: Path) -> str:
    """sha256 of the model file: the version the monitor selects rows by (prefix match)."""
    return file_sha256(path)


def model_file(out: Path, meta: dict[str, Any]) -> Path:
    """The FP32 model the server would load: ONNX, else TorchScript."""
    files = meta.get("files") or {}
    name = files.get("onnx") or files.get("torchscript")
    if name is None:
        raise UserError(f"model.json in '{out}' lists no ONNX or TorchScript model")
    return out / name


def pick(positions: list[int], cap: int = MAX_IMAGES) -> list[int]:
    """All positions, or a fixed random ``cap`` of them (sorted)."""
    if len(positions) <= cap:
        return list(positions)
    chosen = np.random.default_rng(0).choice(len(positions), cap, replace=False)
    return sorted(positions[int(i)] for i in chosen)


def decoded(paths: list[Path], channels: int) -> Iterator[tuple[int, np.ndarray | None]]:
    """Each path's decoded image, None when it cannot be read any more."""
    for i, path in enumerate(paths):
        try:
            yield i, load_image(path, channels)
        except (OSError, ValueError, SyntaxError):
            yield i, None


def split_statistics(
    data: Any, split: str, channels: int, model: ValPredictions | None
) -> dict[str, Any]:
    """One split's input statistics; its images also go to ``model`` when given."""
    index = data.index
    positions = pick(index.positions.get(split, []))
    paths = [Path(index.files[p][0][0]) for p in positions]
    values: dict[str, list[float]] = {name: [] for name in STATS}
    unreadable = 0
    for i, image in decoded(paths, channels):
        if image is None:
            unreadable += 1
            continue
        for name, value in image_stats(image).items():
            values[name].append(value)
        if model is not None:
            label = getattr(index.samples[positions[i]], "label", None)
            model.add(image, None if label is None else str(label))
    return {
        "images": len(paths) - unreadable,
        "of": len(index.positions.get(split, [])),
        "unreadable": unreadable,
        "statistics": {name: summarize(v) for name, v in values.items()},
    }


def build_reference(out: Path, data: Any, meta: dict[str, Any]) -> dict[str, Any]:
    """The content of ``reference.json`` for the model exported into ``out``."""
    path = model_file(out, meta)
    channels = int(meta["input"]["channels"])
    kind = form_name(meta)
    model = ValPredictions(path, meta) if kind in SUMMARIES else None
    splits = {
        split: split_statistics(data, split, channels, model if split == "val" else None)
        for split in SPLITS
    }
    return {
        "format_version": FORMAT_VERSION,
        "task": meta.get("task"),
        "kind": kind,
        "model": path.name,
        "model_sha256": model_version(path),
        "class_names": meta.get("class_names"),
        "channels": channels,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "max_images_per_split": MAX_IMAGES,
        "statistics": STATS,
        "splits": splits,
        "predictions": model.summary() if model is not None else None,
    }


NUMBERS = re.compile(r"\[\s+([-+\d.eE,\s]+?)\s+\]")  # a JSON list of numbers, one a line


def dumps(reference: dict[str, Any]) -> str:
    """Indented JSON with each list of numbers on one line (samples hold thousands)."""
    text = json.dumps(reference, indent=1)
    return NUMBERS.sub(
        lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]", text
    )


def write_reference(out: Path, data: Any, meta: dict[str, Any]) -> str:
    """Write ``out/reference.json``; returns its name, for model.json's ``reference``."""
    reference = build_reference(out, data, meta)
    (out / FILE).write_text(dumps(reference) + "\n")
    counts = ", ".join(f"{reference['splits'][s]['images']} {s}" for s in SPLITS)
    print(f"wrote {out / FILE} (input statistics of {counts} images)")
    return FILE


def load_reference(model_path: Path) -> dict[str, Any]:
    """``reference.json`` beside ``model_path`` (as model.json names it)."""
    meta_file = model_path.parent / "model.json"
    name = FILE
    if meta_file.is_file():
        name = json.loads(meta_file.read_text()).get("reference") or FILE
    path = model_path.parent / name
    if not path.is_file():
        raise UserError(
            f"'{path}' is missing; export the run again (without --no-reference) to write it"
        )
    reference = json.loads(path.read_text())
    if reference.get("format_version") != FORMAT_VERSION or "splits" not in reference:
        raise UserError(f"'{path}' is not an mlcycle reference.json (format_version 1)")
    return reference
