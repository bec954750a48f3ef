"""The served model: an exported ONNX graph read with ``model.json``'s preprocessing and output
form, through mlcycle.edge's functions, so the server answers what ``predict.py`` prints.

Whatever form the exporter declared is answered (``mlcycle.edge.forms``; an undescribed output
raw), so a task added by a plugin is served with no change here.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from mlcycle.core.errors import UserError
from mlcycle.core.hashing import file_sha256
from mlcycle.edge.decode import preprocess_batch, to_array
from mlcycle.edge.form import Options
from mlcycle.edge.forms import form_for
from mlcycle.edge.model import UsageError, is_batched, load_model, outputs_per_image, read_meta
from mlcycle.serve.inputs import parse_upload
from mlcycle.serve.stats import batch_stats

# Pillow decoders for the usual image files only (no EPS, which runs Ghostscript).
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP", "PPM")
SPEC = ("channels", "height", "width", "mean", "std")  # what preprocessing reads
MAX_PIXELS = 40_000_000  # per image: a few kilobytes of PNG can decode to gigabytes
MODEL = Path("export") / "model.onnx"  # a run's exported model, inside the run directory


@dataclass
class Decoded:
    """One uploaded image: its name and bytes as the request brought them, then (filled in by
    :meth:`ServedModel.process`, in the batcher's thread) what the store records of it."""

    name: str
    data: bytes = field(repr=False)
    sha256: str = ""
    width: int = 0
    height: int = 0
    mode: str = ""
    stats: dict[str, float] = field(default_factory=dict)


def run_model(run: Path) -> Path:
    """``RUN/export/model.onnx``; a run that was never exported is told how to export it."""
    if not run.is_dir():
        raise UserError(f"run directory '{run}' does not exist")
    if not (run / MODEL).is_file():
        raise UserError(
            f"run '{run}' was not exported (no {MODEL}); "
            f"export it first: python scripts/export.py --run {run}"
        )
    return run / MODEL


def read_description(path: Path) -> dict[str, Any]:
    """``model.json`` of the model at ``path``, with what preprocessing needs."""
    if not path.is_file():
        raise UserError(f"model '{path}' does not exist; pass RUN/export/model.onnx")
    if path.suffix != ".onnx":
        raise UserError(f"model '{path}' is not .onnx; the server runs ONNX Runtime only")
    try:
        meta = read_meta(path)
    except (UsageError, ValueError) as exc:
        raise UserError(str(exc)) from exc
    missing = [k for k in ("class_names", "input") if not meta.get(k)]
    missing += [f"input.{k}" for k in SPEC if k not in (meta.get("input") or {})]
    if missing:
        raise UserError(f"model.json beside '{path}' lacks {', '.join(missing)}; export again")
    return meta


@dataclass
class Unreadable:
    """An input of a request that cannot be answered: its name, why, the metrics reason, and
    what else its entry in the response names it by."""

    name: str
    error: str
    reason: str = "undecodable"
    where: dict[str, Any] = field(default_factory=dict)


class ServedModel:
    """Decoding, preprocessing and the output form of one exported ONNX image model. Another
    input kind is served by a class with the same methods (``serve/table.py``), chosen by
    model.json's ``input.kind`` (``server.SERVED``)."""

    noun = "image"
    registry: dict[str, Any] | None = None  # the registry's version, when one is followed

    def __init__(
        self, path: Path, threads: int | None = None, top_k: int = 3, min_score: float = 0.5
    ) -> None:
        self.meta = read_description(path)
        self.path = path
        try:
            self.form = form_for(self.meta, Options(top_k=top_k, min_score=min_score))
        except UsageError as exc:  # a plugin's form that does not load
            raise UserError(str(exc)) from exc
        self.task = str(self.meta.get("task") or self.form.name)
        self.names: list[str] = [str(n) for n in self.meta["class_names"]]
        self.spec: dict[str, Any] = self.meta["input"]
        self.batched = is_batched(self.meta) and self.form.batch_axis
        self.version = file_sha256(path)
        try:
            self.run = load_model(path, threads)
        except Exception as exc:  # onnxruntime's errors name the problem
            raise UserError(f"ONNX Runtime cannot load '{path}': {exc}") from exc

    def card_input(self) -> dict[str, Any]:
        """What ``/v1/model`` shows of the input."""
        return {k: self.spec.get(k) for k in ("shape", "channels", "color_mode", "height", "width")}

    def read(
        self, kind: str, content_type: str, body: bytes, max_images: int
    ) -> list[Decoded | Unreadable]:
        """Parse the body into its images, still undecoded (decoding is the batch's work)."""
        return [
            Decoded(name, data) for name, data in parse_upload(kind, content_type, body, max_images)
        ]

    def entry(self, item: Decoded) -> dict[str, Any]:
        """What a response names an image by."""
        return {"name": item.name}

    def stored_columns(self, item: Decoded) -> dict[str, Any]:
        """The store's columns that describe the image (its size, mode and statistics)."""
        return {
            "input_name": item.name,
            "input_sha256": item.sha256,
            "width": item.width,
            "height": item.height,
            "mode": item.mode,
            **item.stats,
        }

    def decode(self, item: Decoded) -> np.ndarray:
        """An image file's bytes to an HxWxC uint8 array (its size and mode noted on ``item``);
        ValueError says why it cannot be read."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(item.data), formats=FORMATS) as img:
                    if img.width * img.height > MAX_PIXELS:
                        raise ValueError(f"{img.width}x{img.height} is over {MAX_PIXELS} pixels")
                    img.load()
                    item.mode = img.mode
                    image = to_array(img, int(self.spec["channels"]))
        except UnidentifiedImageError as exc:
            raise ValueError(f"not a readable image: not a {', '.join(FORMATS)} file") from exc
        except Exception as exc:  # Pillow's decoders raise many types on a broken file
            reason = " ".join(str(exc).split())[:200] or type(exc).__name__
            raise ValueError(f"not a readable image: {reason}") from exc
        item.height, item.width = image.shape[:2]
        item.sha256 = hashlib.sha256(item.data).hexdigest()
        return image

    def inputs(self, items: list[Decoded]) -> tuple[list[np.ndarray | Unreadable], list[int]]:
        """Each item decoded and preprocessed (an :class:`Unreadable` where it does not
        decode), with its statistics; images of one size in one numpy pass."""
        xs: list[np.ndarray | Unreadable] = []
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, item in enumerate(items):
            try:
                xs.append(self.decode(item))
            except ValueError as exc:
                xs.append(Unreadable(item.name, str(exc)))
                continue
            by_shape.setdefault(xs[i].shape, []).append(i)  # type: ignore[union-attr]
        for slots in by_shape.values():
            images = np.stack([xs[i] for i in slots])  # type: ignore[misc]
            for i, stats in zip(slots, batch_stats(images), strict=True):
                items[i].stats = stats
            for i, x in zip(slots, preprocess_batch(images, self.spec), strict=True):
                xs[i] = x
        return xs, sorted(i for slots in by_shape.values() for i in slots)

    def process(self, items: list[Decoded]) -> list[dict[str, Any] | Unreadable]:
        """The answers for a batch of images, one dict per image, or an :class:`Unreadable`
        for an image that does not decode (the batcher's call, in its thread)."""
        xs, readable = self.inputs(items)
        out: list[dict[str, Any] | Unreadable] = list(xs)  # type: ignore[arg-type]
        if readable:
            outputs = outputs_per_image(
                self.run, [xs[i] for i in readable], self.batched, self.form.batch_axis
            )
            sizes = [(items[i].height, items[i].width) for i in readable]
            for i, answer in zip(readable, self.form.answers(outputs, sizes), strict=True):
                out[i] = answer
        return out
