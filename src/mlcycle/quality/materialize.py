"""``scripts/materialize_data.py``: copy a config's data into a new folder, one subfolder per
class, with a manifest that keeps each file's label, split and origin. ``--strip-exif`` removes
EXIF (GPS included), XMP, IPTC and text metadata from the copies; the originals are only read.

    python scripts/materialize_data.py --config configs/image_folder.yaml --data.root PATH \\
        --out data/clean --strip-exif
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from mlcycle.commands.guard import main_guard
from mlcycle.core.errors import UserError
from mlcycle.data.classification import ImageClassificationData
from mlcycle.data.layout import relative_name
from mlcycle.quality.config import data_parser, instantiate_data, parse
from mlcycle.quality.exif import strip_metadata
from mlcycle.quality.tasks import annotation_checks
from mlcycle.quality.validate import check_out_folder

COLUMNS = ("path", "label", "split", "sha256", "bytes", "source_path", "source_sha256")


def parser() -> Any:
    p = data_parser(
        "materialize_data.py",
        "Copy a config's classification data (quarantined and unreadable files left out) into "
        "OUT/<class>/ with OUT/manifest.csv. Reads the config as train.py does.",
    )
    p.add_argument("--out", type=str, required=True, help="a new or empty folder outside the data")
    p.add_argument(
        "--strip-exif",
        action="store_true",
        help="remove EXIF (GPS included), XMP, IPTC and text metadata from the copies",
    )
    return p


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


def check_classification(dm: Any) -> None:
    """Only classification data is copied: masks and boxes have no manifest to carry them."""
    checks = annotation_checks(dm)  # also refuses data modules the quality tools do not read
    if checks is not None:
        raise UserError(
            f"materialize_data.py copies classification data only; this config's data is "
            f"{checks.task} ({type(dm).__name__}): copy its folder as it is, and check it with "
            "validate_data.py"
        )


def materialize(dm: ImageClassificationData, out: Path, strip_exif: bool) -> dict[str, Any]:
    """Write the copies and ``manifest.csv`` through a temporary folder renamed at the end."""
    check_classification(dm)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"--out '{out}' exists and is not an empty folder; choose a new one")
    index = dm.index  # decodes every file once, applies data.quarantine, fixes the splits
    check_out_folder(out, [s.path for s in index.samples])
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    meta_keys = sorted({k for s in index.samples for k in (s.meta or {})})
    extra = [k if k not in COLUMNS else f"meta_{k}" for k in meta_keys]
    rows, taken, stripped = [], set(), 0
    try:
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
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return record


@main_guard
def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = parser()
    args = parse(p, argv)
    dm = instantiate_data(p, args)
    out = Path(args.out)
    record = materialize(dm, out, args.strip_exif)
    note = (
        f", metadata removed from {record['files_with_metadata_removed']}"
        if args.strip_exif
        else ""
    )
    print(f"copied {record['files']} files to {out}{note}; manifest: {out / 'manifest.csv'}")
    print(f"train on the copy: {record['train_with']}")
    return record
