"""``mlcycle.load``: an exported model (RUN/export) that predicts as predict.py does, with the
edge code beside it (numpy, pillow, onnxruntime; no torch for an ONNX model)."""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mlcycle.api.arguments import expect
from mlcycle.api.errors import WrongType
from mlcycle.core.errors import UserError
from mlcycle.edge.decode import preprocess, to_array
from mlcycle.edge.form import Options
from mlcycle.edge.forms import form_for
from mlcycle.edge.model import UsageError, is_batched, load_model, outputs_per_image, read_meta
from mlcycle.edge.predict import new_folder, read_images
from mlcycle.edge.predict_rows import predict_table, table_session

IMAGE_ITEMS = "an image path, a PIL image or a uint8 numpy array (HxW or HxWxC)"


@contextmanager
def _usage_errors() -> Iterator[None]:
    """The edge code's usage errors (predict.py's exit 2) as :class:`UserError`."""
    try:
        yield
    except UsageError as exc:
        raise UserError(str(exc)) from None


def load(path: str | os.PathLike) -> Model:
    """The exported model at ``path``: an export folder (its model.onnx) or a model file."""
    expect("path", path, (str, os.PathLike), "an export folder or a model file")
    return Model(path)


class Model:
    """An exported model and its ``model.json`` (``meta``)."""

    def __init__(self, path: str | os.PathLike) -> None:
        expect("path", path, (str, os.PathLike), "an export folder or a model file")
        path = Path(path)
        if path.is_dir():
            path = path / "model.onnx"
        if not path.is_file():
            raise UserError(f"model '{path}' does not exist; pass RUN/export or a file in it")
        self.path = path
        with _usage_errors():
            self.meta: dict[str, Any] = read_meta(path)
            self.is_table = self.meta["input"].get("kind") == "table"
            self._run = table_session(path) if self.is_table else load_model(path)

    def __repr__(self) -> str:
        return f"Model('{self.path}')"

    def predict(
        self,
        items: Any,
        top_k: int = 3,
        min_score: float = 0.5,
        threshold: float | None = None,
        masks_dir: str | os.PathLike | None = None,
        batch_size: int = 32,
    ) -> list[dict[str, Any]]:
        """One answer per item, the dicts predict.py prints. Images: paths, PIL images or
        uint8 arrays (one or a list); an unreadable file gets an ``error``. A table model:
        a pandas DataFrame or a list of dicts (one per row). ``masks_dir``: a mask model's
        new folder for the mask PNGs."""
        _check_options(top_k, min_score, threshold, masks_dir, batch_size)
        with _usage_errors():
            if self.is_table:
                return self._predict_rows(items, batch_size)
            form = form_for(self.meta, Options(top_k, min_score, threshold))
            if form.writes_files:
                form.options.masks_dir = new_folder(Path(masks_dir) if masks_dir else None)
            items = items if isinstance(items, list | tuple) else [items]
            results: list[dict[str, Any]] = []
            for start in range(0, len(items), batch_size):
                results += self._predict_images(form, items[start : start + batch_size], start)
            return results

    def _predict_images(self, form: Any, items: Any, start: int) -> list[dict[str, Any]]:
        spec = self.meta["input"]
        results: list[dict[str, Any]] = []
        inputs, slots, sizes, names = [], [], [], []
        for n, item in enumerate(items, start):
            if isinstance(item, str | os.PathLike):
                found, read, _, size = read_images([Path(item)], spec)
                results += found
                if read:
                    inputs += read
                    sizes += size
                    slots.append(len(results) - 1)
                    names.append(Path(item))
                continue
            image = to_array(_pil_image(item), int(spec["channels"]))
            inputs.append(preprocess(image, spec))
            sizes.append(image.shape[:2])
            slots.append(len(results))
            names.append(Path(f"image_{n:04d}.png"))  # a mask's file name
            results.append({"path": None})
        if inputs:
            outputs = outputs_per_image(self._run, inputs, is_batched(self.meta), form.batch_axis)
            for slot, name, answer in zip(slots, names, form.answers(outputs, sizes), strict=True):
                results[slot].update(form.line(answer, name))
        return results

    def _predict_rows(self, rows: Any, batch_size: int) -> list[dict[str, Any]]:
        """The rows written to a CSV file and scored as predict.py --csv scores one."""
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "rows.csv"
            if hasattr(rows, "to_csv"):
                rows.to_csv(path, index=False)
            elif isinstance(rows, list | tuple) and all(isinstance(r, dict) for r in rows):
                header = list(dict.fromkeys(k for r in rows for k in r))
                with path.open("w", newline="") as fh:
                    writer = csv.DictWriter(fh, header)
                    writer.writeheader()
                    writer.writerows(rows)
            else:
                raise WrongType(
                    f"rows: a table model predicts a pandas DataFrame or a list of dicts, "
                    f"got {type(rows).__name__}"
                )
            return predict_table(self._run, self.meta, path, batch_size)


def _check_options(
    top_k: Any, min_score: Any, threshold: Any, masks_dir: Any, batch_size: Any
) -> None:
    """predict's options: a :class:`WrongType` or a :class:`UserError` naming the one at fault."""
    expect("top_k", top_k, int, "a positive int")
    expect("min_score", min_score, (float, int), "a number in [0, 1]")
    if threshold is not None:
        expect("threshold", threshold, (float, int), "a number in [0, 1] or None")
    if masks_dir is not None:
        expect("masks_dir", masks_dir, (str, os.PathLike), "a new or empty folder, or None")
    expect("batch_size", batch_size, int, "a positive int")
    for name, value in (("top_k", top_k), ("batch_size", batch_size)):
        if value < 1:
            raise UserError(f"{name} must be at least 1, got {value}")
    for name, value in (("min_score", min_score), ("threshold", threshold)):
        if value is not None and not 0 <= value <= 1:
            raise UserError(f"{name} must be in [0, 1], got {value}")


def _pil_image(item: Any) -> Image.Image:
    """A PIL image, or a uint8 array as one (HxW gray, HxWx1, HxWx3 RGB, HxWx4 RGBA)."""
    if isinstance(item, Image.Image):
        return item
    if not isinstance(item, np.ndarray):
        raise WrongType(f"items: expected {IMAGE_ITEMS}, got {type(item).__name__}")
    if (
        item.dtype != np.uint8
        or item.ndim not in (2, 3)
        or item.ndim == 3
        and item.shape[2] not in (1, 3, 4)
    ):
        raise WrongType(f"items: expected {IMAGE_ITEMS}, got an array {item.dtype} {item.shape}")
    return Image.fromarray(item[:, :, 0] if item.ndim == 3 and item.shape[2] == 1 else item)
