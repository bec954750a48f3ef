"""Run-record helpers shared by the segmentation and detection data modules.

The files are those of the classification data module: ``data_manifest.csv`` (every file
read, with its sha256; its hash is the data fingerprint), ``splits.csv``, ``skipped_files.csv``
(path and reason) and ``data.json``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from tqdm.auto import tqdm

from mlcycle.data.layout import relative_name
from mlcycle.errors import UserError

CACHE_LIMIT_BYTES = 1 << 30  # "auto" caching keeps decoded images in memory below this size

T = TypeVar("T")
R = TypeVar("R")


class BadSample(Exception):
    """A sample that cannot be used (unreadable file, bad label); the message says why."""


def file_digest(path: Path) -> tuple[str, int]:
    """``(sha256, size in bytes)`` of a file."""
    data = Path(path).read_bytes()
    return hashlib.sha256(data).hexdigest(), len(data)


MANIFEST_COLUMNS = ("path", "sha256", "bytes", "label", "split", "source")


def read_manifest(path: Path) -> dict[str, str]:
    """``{path: sha256}`` from a run's ``data_manifest.csv``."""
    with path.open(newline="") as fh:
        return {row["path"]: row["sha256"] for row in csv.DictReader(fh)}


def manifest_changes(old: dict[str, str], new: dict[str, str]) -> dict[str, int]:
    """Counts of files added, removed and modified between two manifests."""
    return {
        "added": len(new.keys() - old.keys()),
        "removed": len(old.keys() - new.keys()),
        "modified": sum(1 for p in old.keys() & new.keys() if old[p] != new[p]),
    }


def check_pixels(value: int | list[int], key: str) -> tuple[int, int]:
    """``image_size`` as ``(height, width)``; one number means a square."""
    size = [value, value] if isinstance(value, int) else list(value)
    if len(size) != 2 or min(size) < 1:
        raise UserError(f"{key}={value} must be a positive size or [height, width]")
    return int(size[0]), int(size[1])


def parallel_map(fn: Callable[[T], R], items: Sequence[T], desc: str) -> list[R]:
    """``[fn(x) for x in items]`` on a few threads (decoding releases the GIL)."""
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        return list(
            tqdm(
                pool.map(fn, items, chunksize=32),
                total=len(items),
                desc=desc,
                unit="img",
                disable=len(items) < 2000,
                leave=False,
            )
        )


def use_cache(flag: bool | None, count: int, bytes_each: int) -> bool:
    return bool(flag) or (flag is None and count * bytes_each < CACHE_LIMIT_BYTES)


def measure_normalization(
    images: Iterable[np.ndarray], channels: int
) -> tuple[list[float], list[float]]:
    """Per-channel mean and std (0..1 units) of uint8 HxWxC images."""
    pixels = np.concatenate([im.reshape(-1, channels) for im in images]).astype(np.float64) / 255
    mean = [round(float(v), 4) for v in pixels.mean(0)]
    std = [round(max(float(v), 1e-3), 4) for v in pixels.std(0)]
    return mean, std


def sample_positions(positions: list[int], limit: int = 1024) -> list[int]:
    rng = np.random.default_rng(0)
    return [int(p) for p in rng.choice(positions, size=min(len(positions), limit), replace=False)]


def splits_from_file(path_text: str, paths: list[Path]) -> list[str]:
    """The split of every path, as a run's ``splits.csv`` recorded it."""
    path = Path(path_text)
    if not path.is_file():
        raise UserError(f"split file '{path}' does not exist")
    with path.open(newline="") as fh:
        recorded = {row["path"]: row["split"] for row in csv.DictReader(fh)}
    splits = []
    for image in paths:
        split = recorded.get(str(image))
        if split is None:
            raise UserError(
                f"'{image}' is not in split file '{path}'; the data changed since that run"
            )
        splits.append(split)
    return splits


def fingerprint(rows: list[tuple[Any, ...]], root: Path) -> str:
    """sha256 over the manifest rows (path below ``root``, content hash, label, split)."""
    digest = hashlib.sha256()
    for path, sha, _, label, split, _ in sorted(rows, key=lambda r: str(r[0])):
        rel = relative_name(Path(path), root)
        digest.update(f"{rel},{sha},{label},{split}\n".encode())
    return digest.hexdigest()


def check_unchanged(run_dir: Path, rows: list[tuple[Any, ...]], allow_changed: bool) -> None:
    """Stop a resume whose data changed since the run started, unless allowed."""
    old_file = run_dir / "data_manifest.csv"
    if not old_file.is_file() or allow_changed:
        return
    changes = manifest_changes(read_manifest(old_file), {str(r[0]): r[1] for r in rows})
    if any(changes.values()):
        counts = ", ".join(f"{n} {what}" for what, n in changes.items())
        raise UserError(
            f"the data changed since this run started ({counts} files); resume anyway with "
            "--data.allow_changed=true, or start a new run"
        )


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def write_run_files(
    run_dir: Path,
    manifest: list[tuple[Any, ...]],
    split_header: Sequence[str],
    split_rows: Iterable[Sequence[Any]],
    skipped: list[tuple[str, str]],
    description: dict[str, Any],
) -> None:
    """``data_manifest.csv``, ``splits.csv``, ``skipped_files.csv`` and ``data.json``."""
    _write_csv(run_dir / "data_manifest.csv", MANIFEST_COLUMNS, manifest)
    _write_csv(run_dir / "splits.csv", split_header, split_rows)
    _write_csv(run_dir / "skipped_files.csv", ("path", "reason"), skipped)
    (run_dir / "data.json").write_text(json.dumps(description, indent=2) + "\n")


def no_usable_data(where: str, skipped: list[tuple[str, str]], what: str) -> UserError:
    """The error when every sample was skipped: names the first problem."""
    if skipped:
        path, reason = skipped[0]
        return UserError(
            f"no usable {what} in '{where}': all {len(skipped)} were skipped; the first: '{path}': {reason}"
        )
    return UserError(f"no {what} found in '{where}'")


def check_strict(skipped: list[tuple[str, str]], strict: bool, where: str) -> None:
    """With ``data.strict=true`` any skipped file stops the run (pipelines that must not drop
    data silently)."""
    if strict and skipped:
        path, reason = skipped[0]
        raise UserError(
            f"data.strict=true and {len(skipped)} file(s) of '{where}' would be skipped; the first: "
            f"'{path}': {reason}. Fix or remove them, or set data.strict=false to skip and list them"
        )
