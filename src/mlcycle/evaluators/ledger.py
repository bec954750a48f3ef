"""The test split's ledger: every reading of a run's test split, appended to
``test_ledger.jsonl`` with the hash of the files read, so a split that was looked at too often
shows it."""

from __future__ import annotations

import csv
import hashlib
import json
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

LEDGER = "test_ledger.jsonl"


def hash_of_test_split(run_dir: Path) -> str | None:
    """sha256 over the sorted content hashes of the run's test files (from data_manifest.csv)."""
    manifest = run_dir / "data_manifest.csv"
    if not manifest.is_file():
        return None
    with manifest.open(newline="") as fh:
        hashes = sorted(row["sha256"] for row in csv.DictReader(fh) if row.get("split") == "test")
    return hashlib.sha256("\n".join(hashes).encode()).hexdigest()


def record_test_use(run_dir: Path, metrics: dict[str, Any], command: str | None = None) -> int:
    """Append this test evaluation to the ledger; return how many came before it."""
    ledger = run_dir / LEDGER
    before = len(ledger.read_text().splitlines()) if ledger.is_file() else 0
    entry = {
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command or shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "test_split_sha256": hash_of_test_split(run_dir),
        "metrics": metrics,
    }
    with ledger.open("a") as fh:
        fh.write(json.dumps(entry) + "\n")
    return before
