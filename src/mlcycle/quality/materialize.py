"""``materialize_data.py`` on classification data: copy it into a new folder, one subfolder
per class, with a manifest that keeps each file's label, split and origin. ``strip_exif`` removes
EXIF (GPS included), XMP, IPTC and text metadata from the copies; the originals are only read.
Reached through the classification kind's quality part (:mod:`mlcycle.images.quality.labels`).
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from mlcycle.core.errors import UserError
from mlcycle.data.generated import write_folder
from mlcycle.data.layout import relative_name
from mlcycle.quality.exif import strip_metadata
from mlcycle.quality.validate import check_out_folder

COLUMNS = ("path", "label", "split", "sha256", "bytes", "source_path", "source_sha256")


def folder_name(label: str) -> str:
    """A label as one safe folder name (labels from SQL or CSV may hold slashes or dots)."""
    name = label.replace("/", "_").replace("\\", "_").replace("\0", "_").strip()
    return "_" if name in ("", ".", "..") else name


def _target(tmp: Path, label: str, source: Path, digest: str, taken: set[str]) -> Path:
    rel = f"{folder_name(label)}/{source.name}"
    if rel in taken:  # two files of one class share a name: keep both
        rel = f"{folder_name(label)}/{source.stem}-{digest[:8]}{source.suffix}"
    taken.add(rel)
    return tmp / rel


def _copy_files(index: Any, tmp: Path, strip_exif: bool, meta_keys: list[str]) -> tuple[list, int]:
    """Copy every sample of ``index`` below ``tmp``: the manifest rows, and how many copies lost
    metadata."""
    rows, taken, stripped = [], set(), 0
    items = zip(index.samples, index.hashes, index.splits, strict=True)
    for sample, digest, split in tqdm(
        list(items), desc="copying", unit="file", leave=False, disable=len(index.samples) < 500
    ):
        data = sample.path.read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise UserError(f"'{sample.path}' changed while it was being copied; run again")
        copy = strip_metadata(data) if strip_exif else data
        stripped += copy != data
        target = _target(tmp, sample.label, sample.path, digest, taken)
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(copy)
        rel_source = relative_name(sample.path, index.root)
        row = [
            target.relative_to(tmp).as_posix(),
            sample.label,
            split,
            hashlib.sha256(copy).hexdigest(),
            len(copy),
            rel_source,
            digest,
        ]
        rows.append(row + [(sample.meta or {}).get(k) for k in meta_keys])
    return rows, stripped


def materialize(dm: Any, out: Path, strip_exif: bool) -> dict[str, Any]:
    """Write the copies of the classification data module ``dm`` and ``manifest.csv`` through a
    temporary folder renamed at the end."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"--out '{out}' exists and is not an empty folder; choose a new one")
    index = dm.index  # decodes every file once, applies data.quarantine, fixes the splits
    check_out_folder(out, [s.path for s in index.samples])
    meta_keys = sorted({k for s in index.samples for k in (s.meta or {})})
    extra = [k if k not in COLUMNS else f"meta_{k}" for k in meta_keys]

    def write(tmp: Path) -> dict[str, Any]:
        rows, stripped = _copy_files(index, tmp, strip_exif, meta_keys)
        with (tmp / "manifest.csv").open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow([*COLUMNS, *extra])
            writer.writerows(rows)
        record = {
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "source": dm.hparams.source,
            "source_root": str(index.root),
            "source_fingerprint": dm.fingerprint,
            "files": len(rows),
            "skipped_unreadable": len(index.skipped),
            "quarantine": dm.hparams.quarantine,
            "strip_exif": strip_exif,
            "files_with_metadata_removed": stripped,
            "train_with": f"--config configs/image_csv.yaml --data.manifest {out / 'manifest.csv'}",
        }
        (tmp / "materialize.json").write_text(json.dumps(record, indent=2) + "\n")
        return record

    return write_folder(out, write, f".{out.name}.partial-")
