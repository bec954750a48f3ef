"""The COCO detection source, and COCO ground truth and results for ``pycocotools``.

``data.annotations`` names one COCO JSON file (see :mod:`mlcycle.data.coco_file`), or a folder
of ``instances_<split>.json`` files (``instances_train2017.json``, ``instances_val2017.json``:
the split is the name without digits, as in :mod:`mlcycle.data.layout`), each giving one
split; their categories must agree. Without it, ``root/annotations/`` is such a folder.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlcycle.core.errors import UserError
from mlcycle.data.boxes import BoxSample
from mlcycle.data.coco_file import CocoSet, read_coco, split_name
from mlcycle.data.detection import register_detection_source
from mlcycle.data.index import Listing
from mlcycle.data.layout import split_of


@register_detection_source("coco")
def coco(
    root: str | None = None, annotations: str | None = None, layout: str = "auto", **_: Any
) -> Listing:
    """``data.annotations`` (a file, or a folder of split files), else ``root/annotations/``."""
    keep = layout != "classes"
    if annotations:
        path = Path(annotations).expanduser()
        if path.is_dir():
            files = split_files(path)
            if not files:
                raise UserError(f"'{path}' holds no instances_<split>.json file")
            base = Path(root).expanduser() if root else path.parent
            return coco_listing(read_coco_splits(files, base, keep), str(path))
        if layout == "splits":
            raise UserError(
                f"data.layout=splits but data.annotations is one file ('{path}'); point it "
                "at a folder of instances_<split>.json files"
            )
        return coco_listing(read_coco(path, root), str(path))
    if root:
        base = Path(root).expanduser()
        files = split_files(base / "annotations") if (base / "annotations").is_dir() else {}
        if files:
            return coco_listing(read_coco_splits(files, base, keep), str(base))
    raise UserError(
        "data.annotations is not set; pass --data.annotations PATH.json (COCO), or a "
        "data.root whose annotations/ folder holds instances_<split>.json files"
    )


def coco_listing(found: CocoSet, where: str) -> Listing:
    """A data module's listing of what the COCO files hold."""
    names = " ".join(f.name for f in found.files)
    return Listing(
        found.samples,
        where,
        found.skipped,
        found.given,
        f"COCO {names}",
        found.class_names,
        found.category_ids,
        [(f, "annotations") for f in found.files],
    )


def split_files(folder: Path) -> dict[str, Path]:
    """``{split: instances_<split>.json}`` of ``folder``; an instances file whose name is not
    a split, or two files of one split, stop with the reason."""
    found: dict[str, Path] = {}
    for file in sorted(folder.glob("*.json")):
        name = split_name(file)
        if name is None:
            continue
        split = split_of(re.sub(r"[0-9]+", "", name).strip("_-"))
        if split is None:
            raise UserError(
                f"'{file}' is not a split's file (instances_train*, instances_val*, "
                "instances_test*); move it away, or set data.annotations to one file"
            )
        if split in found:
            raise UserError(
                f"'{folder}' has two {split} files, {found[split].name} and {file.name}; keep one"
            )
        found[split] = file
    return found


def read_coco_splits(files: dict[str, Path], root: Path, keep_splits: bool = True) -> CocoSet:
    """One CocoSet of several files, each image in its file's split (unless ``keep_splits``
    is false: then every split is drawn). The files' categories must agree."""
    if "train" not in files:
        listed = ", ".join(p.name for p in files.values())
        raise UserError(
            f"COCO annotation files {listed} have no train file (instances_train*.json); add "
            "one, or set data.annotations to the file to read"
        )
    order = [s for s in ("train", "val", "test") if s in files]
    sets = {s: read_coco(files[s], root, split=s if keep_splits else None) for s in order}
    first = sets[order[0]]
    for split in order[1:]:
        other = sets[split]
        if (other.category_ids, other.class_names) != (first.category_ids, first.class_names):
            raise UserError(
                f"the categories of {files[split].name} ({_categories(other)}) differ from those "
                f"of {files[order[0]].name} ({_categories(first)}); the files of one data set "
                "need the same categories"
            )
    samples, skipped = [], []
    owner: dict[int, str] = {}
    for split in order:
        for sample in sets[split].samples:
            if not keep_splits and owner.setdefault(sample.image_id, split) != split:
                raise UserError(
                    f"image id {sample.image_id} is in both {files[owner[sample.image_id]].name} "
                    f"and {files[split].name}; with data.layout=classes the files are drawn into "
                    "splits together and need distinct image ids"
                )
            samples.append(sample)
        skipped += sets[split].skipped
    given = set(order) if keep_splits else set()
    return CocoSet(
        samples, first.class_names, first.category_ids, skipped, [files[s] for s in order], given
    )


def _categories(coco: CocoSet) -> str:
    pairs = [f"{i}:{n}" for i, n in zip(coco.category_ids, coco.class_names, strict=True)]
    return ", ".join(pairs[:6]) + (" ..." if len(pairs) > 6 else "")


def ground_truth(
    samples: Sequence[BoxSample], class_names: Sequence[str], category_ids: Sequence[int]
) -> dict[str, Any]:
    """A COCO ground-truth dict of ``samples`` (boxes in their images' own pixels)."""
    images, annotations = [], []
    for s in samples:
        entry: dict[str, Any] = {"id": s.image_id, "file_name": str(s.path)}
        if s.size:
            entry["width"], entry["height"] = s.size
        images.append(entry)
        areas = s.areas if s.areas is not None else [None] * len(s.boxes)
        for box, label, crowd, area in zip(s.boxes, s.labels, s.crowd, areas, strict=True):
            x1, y1, x2, y2 = (float(v) for v in box)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": s.image_id,
                    "category_id": int(category_ids[int(label)]),
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": float(area) if area is not None else (x2 - x1) * (y2 - y1),
                    "iscrowd": int(crowd),
                }
            )
    categories = [{"id": int(c), "name": n} for c, n in zip(category_ids, class_names, strict=True)]
    return {"images": images, "annotations": annotations, "categories": categories}


def results(
    image_id: int,
    boxes: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    category_ids: Sequence[int],
) -> list[dict[str, Any]]:
    """COCO results rows (``image_id, category_id, bbox [x, y, w, h], score``) of one image."""
    return [
        {
            "image_id": int(image_id),
            "category_id": int(category_ids[int(label)]),
            "bbox": [
                round(float(x1), 3),
                round(float(y1), 3),
                round(float(x2 - x1), 3),
                round(float(y2 - y1), 3),
            ],
            "score": round(float(score), 5),
        }
        for (x1, y1, x2, y2), score, label in zip(boxes, scores, labels, strict=True)
    ]
