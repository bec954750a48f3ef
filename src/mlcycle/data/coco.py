"""COCO object-detection JSON: reading it into samples, and writing ground truth and results.

A problem with the file as a whole (missing, not JSON, no ``images`` or ``categories``, two
images with one id) stops the run. A problem with one image (the file is missing, its
``file_name`` leads outside the image root, an annotation has a box of negative or zero width
or height, or an unknown category) skips that image, with the reason in ``skipped_files.csv``.
A ``file_name`` that leaves the root is never opened; a link inside the root is followed.

Several files ``annotations/instances_<split>.json`` (``instances_train2017.json``,
``instances_val2017.json``: the split is the name without digits, as in
:mod:`mlcycle.data.layout`) give one split each; their categories must agree. An image is
looked for at ``file_name`` below the root, then in ``<root>/<name>/`` and
``<root>/images/<name>/`` (``<name>`` being ``train2017``, ...), then ``<root>/images/<split>/``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlcycle.data.boxes import BoxSample
from mlcycle.data.layout import leaves_root, split_of
from mlcycle.errors import UserError

LEAVES = "path leaves the data root"


@dataclass
class CocoSet:
    samples: list[BoxSample]
    class_names: list[str]
    category_ids: list[int]  # COCO category id of each class index
    skipped: list[tuple[str, str]]
    files: list[Path] = field(default_factory=list)  # the annotation files read
    given: set[str] = field(default_factory=set)  # the splits the files give


def _load_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"COCO annotation file '{path}' does not exist; set data.annotations")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(
            f"COCO annotation file '{path}' is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"COCO annotation file '{path}' cannot be read: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise UserError(f"COCO annotation file '{path}' has no 'images' list")
    if not isinstance(data.get("categories"), list) or not data["categories"]:
        raise UserError(f"COCO annotation file '{path}' has no 'categories' list")
    if not isinstance(data.get("annotations", []), list):
        raise UserError(f"COCO annotation file '{path}': 'annotations' is not a list")
    return data


def _box_problem(ann: dict[str, Any], name: str) -> str | None:
    bbox = ann.get("bbox")
    if not (
        isinstance(bbox, list)
        and len(bbox) == 4
        and all(isinstance(v, int | float) and np.isfinite(v) for v in bbox)
    ):
        return f"annotation {ann.get('id')} in {name} has bbox {bbox!r}; expected [x, y, width, height]"
    for value, what in ((bbox[2], "width"), (bbox[3], "height")):
        if value <= 0:
            kind = "negative" if value < 0 else "zero"
            return f"annotation {ann.get('id')} in {name} has a box of {kind} {what} ({value}): bbox {bbox}"
    return None


def split_name(file: Path) -> str | None:
    """``train2017`` for ``instances_train2017.json``; ``None`` for other names."""
    match = re.fullmatch(r"instances_(.+)\.json", file.name, flags=re.IGNORECASE)
    return match.group(1) if match else None


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


def _find_image(root: Path, file_name: str, folder: str | None, split: str | None) -> Path:
    """The first place ``file_name`` exists: below the root as written, then in the split's
    image folders; the written place when none exists."""
    written = root / file_name
    places = [written]
    if folder:
        places += [root / folder / file_name, root / "images" / folder / file_name]
    if split and split != folder:
        places += [root / "images" / split / file_name]
    return next((p for p in places if p.is_file()), written)


def read_coco(
    annotations: str | Path, image_root: str | Path | None = None, split: str | None = None
) -> CocoSet:
    """Samples of a COCO file; ``file_name`` paths are relative to ``image_root`` (default: the
    annotation file's folder). ``split`` (train/val/test) is set on every sample."""
    path = Path(annotations).expanduser()
    data = _load_json(path)
    root = Path(image_root).expanduser() if image_root else path.parent
    if not root.is_dir():
        raise UserError(f"image root '{root}' does not exist; set data.root to the images' folder")
    name = path.name
    categories = sorted(data["categories"], key=lambda c: c.get("id", 0))
    ids = [c.get("id") for c in categories]
    if len(set(ids)) != len(ids) or not all(isinstance(i, int) for i in ids):
        raise UserError(f"COCO annotation file '{path}': category ids must be unique integers")
    lookup = {cid: k for k, cid in enumerate(ids)}
    folder = split_name(path)
    skipped: list[tuple[str, str]] = []
    samples: dict[int, BoxSample] = {}
    for image in data["images"]:
        if not isinstance(image, dict) or "id" not in image or "file_name" not in image:
            raise UserError(
                f"COCO annotation file '{path}': every image needs 'id' and 'file_name'"
            )
        if image["id"] in samples:
            raise UserError(f"COCO annotation file '{path}': image id {image['id']} appears twice")
        written = str(image["file_name"])
        size = (
            (int(image["width"]), int(image["height"]))
            if "width" in image and "height" in image
            else None
        )
        if leaves_root(written, root):  # as written, relative to the root
            # Never opened: listed with the reason, the other images go on.
            sample = BoxSample(root / written, int(image["id"]), size=size, split=split)
            sample.problem = f"{LEAVES} ('{written}' in {name}, image id {image['id']})"
            samples[image["id"]] = sample
            continue
        file = _find_image(root, written, folder, split)
        sample = BoxSample(file, int(image["id"]), size=size, split=split)
        if not file.is_file():
            sample.problem = (
                f"listed in {name} (image id {image['id']}) but the file does not exist"
            )
        samples[image["id"]] = sample
    found: dict[int, list[tuple[list[float], int, bool, float]]] = {}
    for ann in data.get("annotations", []):
        image_id = ann.get("image_id")
        if image_id not in samples:
            skipped.append(
                (
                    str(path),
                    f"annotation {ann.get('id')} refers to image id {image_id}, which 'images' does not list",
                )
            )
            continue
        sample = samples[image_id]
        problem = _box_problem(ann, name)
        if problem is None and ann.get("category_id") not in lookup:
            problem = f"annotation {ann.get('id')} in {name} has category_id {ann.get('category_id')}, which 'categories' does not list"
        if problem:
            sample.problem = sample.problem or problem
            continue
        x, y, w, h = (float(v) for v in ann["bbox"])
        area = float(ann.get("area", w * h))
        found.setdefault(image_id, []).append(
            ([x, y, x + w, y + h], lookup[ann["category_id"]], bool(ann.get("iscrowd", 0)), area)
        )
    for image_id, objects in found.items():
        sample = samples[image_id]
        sample.boxes = np.array([o[0] for o in objects], np.float64).reshape(-1, 4)
        sample.labels = np.array([o[1] for o in objects], np.int64)
        sample.crowd = np.array([o[2] for o in objects], bool)
        sample.areas = np.array([o[3] for o in objects], np.float64)
    names = [str(c.get("name", c["id"])) for c in categories]
    given = {split} if split else set()
    return CocoSet(list(samples.values()), names, ids, skipped, [path], given)


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
