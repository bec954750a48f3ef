"""What labelled images can be sliced by: the extra columns of their manifest or SQL query,
and the image attributes the EDA reports (brightness and contrast of the gray levels, size in
pixels, aspect ratio width/height), cut into quantile bins when they take many values."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PIL import Image

from mlcycle.evaluators.slice_columns import MAX_VALUES, SliceColumns
from mlcycle.serve.stats import luminance

ATTRIBUTES = ("brightness", "contrast", "size", "aspect")
MAX_CATEGORIES = 30  # a metadata column with more text values (ids, names) is not sliced by default


def _meta_names(data: Any) -> list[str]:
    return sorted({k for s in data.index.samples for k in (s.meta or {})})


def _file_size(path: Any) -> tuple[int, int] | None:
    """The file's width and height (the header only), or None when it cannot be read."""
    try:
        with Image.open(path) as img:
            return img.size
    except OSError:
        return None


class ImageSlices(SliceColumns):
    unit = "images"

    def names(self, data: Any) -> list[str]:
        return [*_meta_names(data), *ATTRIBUTES]

    def defaults(self, data: Any) -> list[str]:
        """The image attributes, and the metadata columns of few values or of numbers."""
        chosen = []
        for name in _meta_names(data):
            values = {(s.meta or {}).get(name) for s in data.index.samples} - {None, ""}
            numeric = all(isinstance(v, int | float) for v in values)
            if numeric or len(values) <= max(MAX_VALUES, MAX_CATEGORIES):
                chosen.append(name)
        return [*chosen, *ATTRIBUTES]

    def values(self, data: Any, positions: Sequence[int], names: Sequence[str]) -> dict[str, list]:
        samples = [data.index.samples[p] for p in positions]
        found: dict[str, list] = {}
        wanted = [n for n in names if n in ATTRIBUTES and n not in _meta_names(data)]
        if {"brightness", "contrast"} & set(wanted):
            luma = [luminance(data.raw_image(p)) for p in positions]
            found["brightness"] = [float(x.mean()) for x in luma]
            found["contrast"] = [float(x.std()) for x in luma]
        if {"size", "aspect"} & set(wanted):
            sizes = [_file_size(s.path) for s in samples]
            found["size"] = [
                w * h if (w, h) != (0, 0) else None for w, h in (s or (0, 0) for s in sizes)
            ]
            found["aspect"] = [
                round(w / h, 4) if h else None for w, h in (s or (0, 0) for s in sizes)
            ]
        meta = {n: [(s.meta or {}).get(n) for s in samples] for n in names if n not in found}
        return {n: found.get(n, meta.get(n)) for n in names}


IMAGE_SLICES = ImageSlices()
