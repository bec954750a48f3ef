"""One COCO object-detection JSON file read into samples.

A problem with the file as a whole (missing, not JSON, no ``images`` or ``categories``, two
images with one id) stops the run. A problem with one image (the file is missing, its
``file_name`` leads outside the image root, an annotation has a box of negative or zero width
or height, or an unknown category) skips that image, with the reason in ``skipped_files.csv``.
A ``file_name`` that leaves the root is never opened; a link inside the root is followed.
An image is looked for at ``file_name`` below the root, then in ``<root>/<name>/`` and
``<root>/images/<name>/`` (``<name>`` being ``train2017``, ... of ``instances_train2017.json``),
then ``<root>/images/<split>/``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlcycle.core.errors import UserError
from mlcycle.data.boxes import BoxSample
from mlcycle.data.layout import leaves_root

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


def _sample(image: Any, root: Path, name: str, folder: str | None, split: str | None) -> BoxSample:
    """The sample of one ``images`` entry; a file that leaves the root is never opened."""
    written = str(image["file_name"])
    size = (
        (int(image["width"]), int(image["height"]))
        if "width" in image and "height" in image
        else None
    )
    where = f"{name}, image id {image['id']}"
    if leaves_root(written, root):  # as written, relative to the root
        sample = BoxSample(root / written, int(image["id"]), size=size, split=split)
        sample.problem = f"{LEAVES} ('{written}' in {where})"
    else:
        file = _find_image(root, written, folder, split)
        sample = BoxSample(file, int(image["id"]), size=size, split=split)
        if not sample.path.is_file():
            sample.problem = (
                f"listed in {name} (image id {image['id']}) but the file does not exist"
            )
    sample.annotations = name
    return sample


def _images(
    data: dict[str, Any], path: Path, root: Path, split: str | None
) -> dict[int, BoxSample]:
    """The samples of the file's ``images``, by image id."""
    samples: dict[int, BoxSample] = {}
    folder = split_name(path)
    for image in data["images"]:
        if not isinstance(image, dict) or "id" not in image or "file_name" not in image:
            raise UserError(
                f"COCO annotation file '{path}': every image needs 'id' and 'file_name'"
            )
        if image["id"] in samples:
            raise UserError(f"COCO annotation file '{path}': image id {image['id']} appears twice")
        samples[image["id"]] = _sample(image, root, path.name, folder, split)
    return samples


def _objects(
    data: dict[str, Any], path: Path, samples: dict[int, BoxSample], lookup: dict[int, int]
) -> list[tuple[str, str]]:
    """Set each sample's boxes from the ``annotations``; a bad one marks its image's problem.
    Returns the annotations of unknown images, as skipped."""
    name = path.name
    skipped: list[tuple[str, str]] = []
    found: dict[int, list[tuple[list[float], int, bool, float]]] = {}
    for ann in data.get("annotations", []):
        image_id = ann.get("image_id")
        if image_id not in samples:
            reason = f"annotation {ann.get('id')} refers to image id {image_id}, which 'images' does not list"
            skipped.append((str(path), reason))
            continue
        problem = _box_problem(ann, name)
        if problem is None and ann.get("category_id") not in lookup:
            problem = f"annotation {ann.get('id')} in {name} has category_id {ann.get('category_id')}, which 'categories' does not list"
        if problem:
            samples[image_id].problem = samples[image_id].problem or problem
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
    return skipped


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
    categories = sorted(data["categories"], key=lambda c: c.get("id", 0))
    ids = [c.get("id") for c in categories]
    if len(set(ids)) != len(ids) or not all(isinstance(i, int) for i in ids):
        raise UserError(f"COCO annotation file '{path}': category ids must be unique integers")
    samples = _images(data, path, root, split)
    skipped = _objects(data, path, samples, {cid: k for k, cid in enumerate(ids)})
    names = [str(c.get("name", c["id"])) for c in categories]
    given = {split} if split else set()
    return CocoSet(list(samples.values()), names, ids, skipped, [path], given)
