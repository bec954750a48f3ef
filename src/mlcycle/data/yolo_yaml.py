"""An Ultralytics ``data.yaml``: ``path`` (optional base), ``train``/``val``/``test`` (each an
images folder, a list of them, or a ``.txt`` file listing image paths), ``names`` (list or
``{id: name}``), ``nc``. Labels are found by Ultralytics' rule: the last ``images`` path
component becomes ``labels`` and the suffix ``.txt``. Every path must stay inside the root: one
that leaves it is listed in ``skipped_files.csv`` ("path leaves the data root") and never opened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mlcycle.core.errors import UserError
from mlcycle.data.images import is_image_file
from mlcycle.data.index import Listing
from mlcycle.data.layout import absolute, leaves_root, split_of
from mlcycle.data.splits import SPLITS
from mlcycle.data.yolo_labels import LEAVES, Reader, label_path, place


def load_yaml(file: Path) -> dict[str, Any]:
    try:
        spec = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UserError(f"'{file}' is not valid YAML: {' '.join(str(exc).split())}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"'{file}' cannot be read: {exc}") from exc
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        raise UserError(f"'{file}' must hold a mapping (path, train, val, test, names)")
    return spec


def yaml_names(spec: dict[str, Any], file: Path) -> list[str] | None:
    """``names`` (a list, or ``{id: name}`` with ids 0..n-1) checked against ``nc``."""
    names = spec.get("names")
    if isinstance(names, dict):
        keys = sorted(names)
        if keys != list(range(len(keys))):
            raise UserError(f"'{file}': the ids of 'names' must be 0..{len(keys) - 1}, got {keys}")
        names = [str(names[k]) for k in keys]
    elif isinstance(names, list) and names:
        names = [str(n) for n in names]
    else:
        names = None
    count = spec.get("nc")
    if count is not None:
        if not isinstance(count, int) or count < 1:
            raise UserError(f"'{file}': nc={count!r} is not a positive number of classes")
        if names is None:
            return [f"class_{i}" for i in range(count)]
        if len(names) != count:
            raise UserError(f"'{file}': nc={count} but 'names' lists {len(names)} classes")
    return names


def yolo_classes(root: Path, classes: list[str] | None, spec_file: Path | None = None) -> list[str]:
    """``data.classes``, else the yaml's ``names``, else ``root/classes.txt``."""
    if classes:
        return [str(c) for c in classes]
    spec_file = spec_file or next(
        (root / n for n in ("data.yaml", "data.yml") if (root / n).is_file()), None
    )
    if spec_file is not None:
        names = yaml_names(load_yaml(spec_file), spec_file)
        if names:
            return names
    if (root / "classes.txt").is_file():
        names = [n.strip() for n in (root / "classes.txt").read_text().splitlines() if n.strip()]
        if names:
            return names
    raise UserError(
        f"no class names for the YOLO data in '{root}': set data.classes, or write classes.txt "
        "(one name per line) or data.yaml with 'names'"
    )


def from_yaml(
    spec_file: Path,
    spec: dict[str, Any],
    root: Path,
    classes: list[str] | None,
    layout: str,
) -> Listing:
    """Splits and names from an Ultralytics data.yaml whose folder is the data root."""
    names = [str(c) for c in classes] if classes else yaml_names(spec, spec_file)
    if not names:
        names = yolo_classes(root, None, spec_file)  # classes.txt, or the error naming them
    base = root
    if spec.get("path"):
        base = place(str(spec["path"]), root)
        if leaves_root(absolute(base), root):
            raise UserError(
                f"'{spec_file}': path '{spec['path']}' leaves the data root '{root}'; point "
                "data.root at the folder the data is in (holding this yaml), or change path"
            )
    entries, keys = _entries(spec, spec_file)
    reader = Reader(len(names))
    lists = [
        path
        for split in SPLITS
        for entry in entries.get(split, [])
        for path in _read_entry(
            reader, entry, split, base, root, f"{keys[split]} in {spec_file.name}"
        )
    ]
    lost = [s for s in entries if not any(x.split == s for x in reader.samples)]
    if "train" in lost:
        raise UserError(
            f"'{spec_file}': the train entry gives no image inside the data root '{root}'"
            + (f"; the first problem: {reader.skipped[0][1]}" if reader.skipped else "")
        )
    given = set(entries)  # a given split with no usable image stops later, naming it
    if layout == "classes":
        for sample in reader.samples:
            sample.split = None
        given = set()
    text = f"YOLO {spec_file.name} " + " ".join(f"{s}/" for s in SPLITS if s in given)
    files = [(spec_file, "data.yaml")] + [(path, "image list") for path in lists]
    listing = Listing([], str(spec_file.parent), [], given, text.rstrip(), names, files=files)
    return reader.fill(listing)


def _entries(spec: dict[str, Any], spec_file: Path) -> tuple[dict[str, list[str]], dict[str, str]]:
    """The yaml's entries by split (``train``, ``val``, ...) and the key each came from."""
    entries: dict[str, list[str]] = {}
    keys: dict[str, str] = {}
    for key, value in spec.items():
        split = split_of(str(key))
        if split is None or value in (None, "", []):
            continue
        if split in keys:
            raise UserError(f"'{spec_file}' has both '{keys[split]}' and '{key}'; keep one")
        keys[split] = str(key)
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(v, str) for v in items):
            raise UserError(
                f"'{spec_file}': '{key}' must be a folder, a .txt file, or a list of them"
            )
        entries[split] = items
    if "train" not in entries:
        raise UserError(f"'{spec_file}' has no train entry; add 'train: images/train'")
    return entries, keys


def _read_entry(
    reader: Reader, entry: str, split: str, base: Path, root: Path, key: str
) -> list[Path]:
    """Read one entry (a folder, an image list or an image); returns the image lists read."""
    where = f"'{entry}' ({key})"
    path = place(entry, base)
    if leaves_root(absolute(path), root):
        # Roboflow writes '../train/images' next to a data.yaml in the root; Ultralytics
        # then looks for 'train/images' in the root, and so do we (never outside it).
        inside = place(entry[3:], base) if entry.startswith("../") else None
        if inside is None or leaves_root(absolute(inside), root) or not inside.exists():
            reader.skipped.append((str(path), f"{LEAVES} ({where})"))
            return []
        path = inside
    if path.is_dir():
        reader.folder(path, None, split)
    elif path.is_file() and path.suffix.lower() == ".txt":
        _image_list(path, root, split, reader)
        return [path]
    elif path.is_file() and is_image_file(path):
        reader.add(path, label_path(path), split)
    else:
        raise UserError(f"{where} does not exist (read as {path})")
    return []


def _image_list(listing: Path, root: Path, split: str, reader: Reader) -> None:
    """A .txt file of image paths, one per line, relative to the file's folder."""
    try:
        lines = listing.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"image list '{listing}' cannot be read: {exc}") from exc
    for n, line in enumerate(lines, start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        path = place(entry, listing.parent)
        if leaves_root(absolute(path), root):
            reader.skipped.append((str(path), f"{LEAVES} (line {n} of {listing.name}: '{entry}')"))
            continue
        reader.add(path, label_path(path), split)
