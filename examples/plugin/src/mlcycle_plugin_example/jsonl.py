"""``jsonl``: a JSON-lines manifest, one ``{"path": ..., "label": ...}`` object per line.

A data source is ``fn(**options) -> list[Sample] | Found``. It receives every data key it may
need (``root``, ``manifest``, ``path_column``, ``label_column``, ... and whatever
``data.source_options`` holds) and ignores the rest. It returns the samples and, in ``Found``,
the rows it skipped with the reason (naming the line) and a few words on the layout.

Paths are relative to the manifest's folder, as with the ``csv`` source; a row whose path
leaves that folder is skipped, not read. ``label`` is a string or a list of strings; a list
becomes one ``|``-separated label (``["dog", "cat"]`` -> ``"cat|dog"``), which is what the
multi-label task reads. An optional ``split`` (train/val/test) fixes the row's split; other
keys are kept as the sample's ``meta``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlcycle.core.errors import UserError
from mlcycle.data.layout import absolute
from mlcycle.data.sources import SPLITS, Found, Sample, given_split, row_problem

SEPARATOR = "|"


def label_text(value: Any) -> str:
    """A row's label as one string: a list of labels is sorted, de-duplicated and joined."""
    if isinstance(value, list):
        return SEPARATOR.join(sorted({str(v).strip() for v in value if str(v).strip()}))
    return "" if value is None else str(value).strip()


def jsonl_source(
    manifest: str | None = None,
    path_column: str = "path",
    label_column: str = "label",
    **_: Any,
) -> Found:
    """Samples of the JSON-lines file ``manifest`` (``data.manifest``); ``data.path_column``
    and ``data.label_column`` name the keys."""
    if not manifest:
        raise UserError(
            "data.manifest is not set; pass --data.manifest PATH.jsonl with one "
            '{"path": ..., "label": ...} object per line'
        )
    file = Path(manifest).expanduser()
    if not file.is_file():
        raise UserError(f"manifest '{manifest}' does not exist; pass --data.manifest PATH.jsonl")
    root = absolute(file.parent)
    samples, skipped = [], []
    with file.open(encoding="utf-8-sig") as fh:
        for line, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            where = f"line {line}"
            try:
                row = json.loads(text)
            except json.JSONDecodeError as exc:
                skipped.append((f"{file.name}:{line}", f"{where}: not JSON ({exc.msg})"))
                continue
            if not isinstance(row, dict):
                skipped.append((f"{file.name}:{line}", f"{where}: not a JSON object"))
                continue
            rel = str(row.get(path_column) or "").strip()
            label = label_text(row.get(label_column))
            problem = row_problem(where, rel, label, root, (path_column, label_column))
            if problem:
                skipped.append((rel or f"{file.name}:{line}", problem))
                continue
            split = given_split(row.get("split"), f"manifest '{manifest}' {where}")
            extra = {k: v for k, v in row.items() if k not in (path_column, label_column, "split")}
            samples.append(Sample(root / rel, label, split, extra or None))
    given = sorted({s.split for s in samples if s.split}, key=SPLITS.index)
    splits = f" with a split key ({', '.join(given)})" if given else ""
    return Found(samples, skipped, f"JSON-lines manifest {file.name}{splits}")
