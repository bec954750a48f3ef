"""The data's part of a run record: ``data_manifest.csv`` (every file read, with its sha256),
its fingerprint, the check that a resumed run's data did not change, and the run files
(``data_manifest.csv``, ``splits.csv``, ``skipped_files.csv``, ``data.json``)."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from mlcycle.core.errors import UserError
from mlcycle.data.layout import relative_name

MANIFEST_COLUMNS = ("path", "sha256", "bytes", "label", "split", "source")


def file_digest(path: Path) -> tuple[str, int]:
    """``(sha256, size in bytes)`` of a file."""
    data = Path(path).read_bytes()
    return hashlib.sha256(data).hexdigest(), len(data)


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
