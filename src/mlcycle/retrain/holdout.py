"""The holdout champion and challenger are both scored on: the same images, fresh to both.

By default it is the challenger's test split: the updated data's sealed test split, which
train.py never read. ``--holdout DIR`` takes every image under another data root (same layout
as ``data.root``); ``--holdout FILE`` the ``test`` rows of a split file (``path,...,split``
over the challenger's data, like a run's ``splits.csv``).

An image either model trained on or was selected on (the ``train`` and ``val`` rows of its run's
``data_manifest.csv``, matched by content hash, so a renamed copy counts too) is dropped. What
is left is written as ``holdout.csv`` (``path,split,reason`` for every image of the data:
``test`` for a held-out image, ``excluded`` with the reason, ``unused``), and each model is
scored on the ``test`` rows of that file through the challenger's data module (``split_file``),
with its own preprocessing (image size, channels, normalization): the same images, each model
seeing them as it was trained to.
"""

from __future__ import annotations

import csv
import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlcycle.core.errors import UserError
from mlcycle.core.imports import import_object
from mlcycle.data.manifest import file_digest
from mlcycle.evaluators import evaluator_for
from mlcycle.run.loader import Run, sha256

HOLDOUT_FILE = "holdout.csv"
SEEN_SPLITS = ("train", "val")  # trained on, or the checkpoint was chosen on
GENERATED = ("digits", "shapes")  # built-in sources that write their own images under root


@dataclass
class Holdout:
    """Where the held-out images come from and which they are."""

    challenger: Run
    overrides: dict[str, Any]  # data arguments that differ from the challenger's (root)
    split_file: Path
    source: str  # in words, for the decision table
    images: int
    excluded: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    sha256: str = ""  # over the held-out images' content hashes
    own_test_split: bool = True  # the challenger's test split: its test ledger records the use
    per_run: bool = False  # rows of a manifest: each model scored with its own split file

    def line(self) -> str:
        """In words, for the decision table."""
        dropped = len(self.excluded)
        seen = f" ({dropped} dropped: a model trained or was validated on them)" if dropped else ""
        unit = "rows" if self.per_run else "images"
        return f"{self.source}, {self.images} {unit}{seen}; {self.split_file}"

    def describe(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "split_file": str(self.split_file),
            "images": self.images,
            "excluded": len(self.excluded),
            "sha256": self.sha256,
        }


def seen_by(run: Run, who: str) -> dict[str, str]:
    """``{sha256: "<who> <split>"}`` for the files run ``run`` trained or was selected on."""
    manifest = run.path / "data_manifest.csv"
    if not manifest.is_file():
        raise UserError(
            f"'{manifest}' is missing; the {who} run must be written by train.py to check "
            "which images it has seen"
        )
    with manifest.open(newline="") as fh:
        return {
            row["sha256"]: f"{who} {row['split']}"
            for row in csv.DictReader(fh)
            if row.get("split") in SEEN_SPLITS
        }


def _listed_paths(challenger: Run, overrides: dict[str, Any]) -> list[str]:
    """Every sample path the challenger's data module lists (nothing decoded yet)."""
    data = challenger.config["data"]
    kwargs = {**(data.get("init_args") or {}), **overrides, "split_file": None}
    module = import_object(data["class_path"], "data class in the run's config.yaml")(**kwargs)
    return [str(sample.path) for sample in module.list_samples().samples]


def _test_rows(split_file: Path) -> list[str]:
    with split_file.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if not {"path", "split"} <= set(reader.fieldnames or []):
            raise UserError(f"holdout split file '{split_file}' needs 'path' and 'split' columns")
        return [row["path"] for row in reader if row["split"] == "test"]


def _source(challenger: Run, spec: str | None) -> tuple[dict[str, Any], list[str] | None, str]:
    """``(data overrides, candidate paths or None for all, description)`` for ``--holdout``."""
    if spec is None:
        rows = _test_rows(challenger.path / "splits.csv")
        return {}, rows, f"the challenger's test split ({challenger.path / 'splits.csv'})"
    path = Path(spec)
    if path.is_file():
        return {}, _test_rows(path), f"the test rows of {path}"
    if path.is_dir():
        init = challenger.config["data"].get("init_args") or {}
        if init.get("manifest") or init.get("url") or init.get("source") in GENERATED:
            raise UserError(
                f"--holdout {spec}: a folder replaces data.root, but this data is read from a "
                f"manifest, a database or generated ({init.get('source')}); pass a split file "
                "(path,...,split) instead"
            )
        return {"root": str(path)}, None, f"every image under {path}"
    raise UserError(f"--holdout '{spec}' does not exist; give an image folder or a split file")


def lists_files(run: Run) -> bool:
    """The run's data module lists files (images), rather than rows of its manifest."""
    data = import_object(run.config["data"]["class_path"], "data class in the run's config.yaml")
    return hasattr(data, "list_samples")


def _manifest_rows(run: Run) -> list[dict[str, str]]:
    with (run.path / "data_manifest.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def build_holdout(challenger: Run, champion: Run, spec: str | None, out: Path) -> Holdout:
    """Pick the held-out images, drop those either model has seen, write ``holdout.csv``."""
    if not lists_files(challenger):
        return rows_holdout(challenger, champion, spec, out)
    overrides, wanted, source = _source(challenger, spec)
    listed = _listed_paths(challenger, overrides)
    candidates = set(listed if wanted is None else wanted)
    seen = {**seen_by(challenger, "challenger"), **seen_by(champion, "champion")}
    rows, excluded, hashes = [], [], []
    for path in listed:
        split, reason = "unused", ""
        if path in candidates:
            try:
                digest = file_digest(Path(path))[0]
            except OSError:
                digest = None  # unreadable: the data module skips it as well
            if digest is not None and digest in seen:
                split, reason = "excluded", f"seen by the {seen[digest]} split"
                excluded.append((path, reason))
            elif digest is not None:
                split = "test"
                hashes.append(digest)
        rows.append((path, split, reason))
    if wanted is not None and not candidates & set(listed):
        raise UserError(f"none of the held-out paths of {source} is in the challenger's data")
    if not hashes:
        raise UserError(
            f"no held-out image is left in {source} ({len(excluded)} dropped: a model has seen "
            "them); give fresh images with --holdout"
        )
    out.mkdir(parents=True, exist_ok=True)
    split_file = out / HOLDOUT_FILE
    with split_file.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(("path", "split", "reason"))
        writer.writerows(rows)
    digest = hashlib.sha256("\n".join(sorted(hashes)).encode()).hexdigest()
    return Holdout(
        challenger, overrides, split_file, source, len(hashes), excluded, digest, spec is None
    )


def rows_holdout(challenger: Run, champion: Run, spec: str | None, out: Path) -> Holdout:
    """The held-out rows of a data module that lists no files (a table): the challenger's test
    rows (or the test rows of the split file ``spec``) that neither model trained or was
    validated on (by content hash), from the rows of the challenger's ``data_manifest.csv``."""
    if spec is not None and not Path(spec).is_file():
        raise UserError(
            f"--holdout {spec}: this data has rows, not files under a folder; pass a split file "
            "(path,...,split over the challenger's rows, like its splits.csv)"
        )
    path = challenger.path / "splits.csv" if spec is None else Path(spec)
    wanted = set(_test_rows(path))
    source = f"the challenger's test split ({path})" if spec is None else f"the test rows of {path}"
    seen_by(challenger, "challenger")  # the manifests must be there
    seen = {**seen_by(challenger, "challenger"), **seen_by(champion, "champion")}
    rows, excluded, hashes = [], [], []
    for row in _manifest_rows(challenger):
        split, reason = "unused", ""
        if row["path"] in wanted and row["sha256"] in seen:
            split, reason = "excluded", f"seen by the {seen[row['sha256']]} split"
            excluded.append((row["path"], reason))
        elif row["path"] in wanted:
            split = "test"
            hashes.append(row["sha256"])
        rows.append((row["path"], split, reason))
    if not hashes:
        raise UserError(
            f"no held-out row is left in {source} ({len(excluded)} dropped: a model has seen "
            "them); give fresh rows with --holdout"
        )
    return _write(Holdout(challenger, {}, out / HOLDOUT_FILE, source, len(hashes), excluded,
                          own_test_split=spec is None, per_run=True), rows, hashes)  # fmt: skip


def _write(holdout: Holdout, rows: list[tuple[str, str, str]], hashes: list[str]) -> Holdout:
    holdout.split_file.parent.mkdir(parents=True, exist_ok=True)
    with holdout.split_file.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(("path", "split", "reason"))
        writer.writerows(rows)
    holdout.sha256 = hashlib.sha256("\n".join(sorted(hashes)).encode()).hexdigest()
    return holdout


def run_split_file(run: Run, holdout: Holdout) -> Path:
    """``holdout.csv`` with ``run``'s own train and val rows marked as its ``splits.csv``
    has them, beside the files its data records (``data.json``'s ``*_file``: a table's schema
    and pipeline), so its data module rebuilds the preprocessing ``run`` trained with."""
    own = {}
    with (run.path / "splits.csv").open(newline="") as fh:
        own = {r["path"]: r["split"] for r in csv.DictReader(fh) if r["split"] in SEEN_SPLITS}
    folder = (
        holdout.split_file.parent
        / f"split_{hashlib.sha256(str(run.path.resolve()).encode()).hexdigest()[:12]}"
    )
    folder.mkdir(parents=True, exist_ok=True)
    with holdout.split_file.open(newline="") as fh:
        rows = [(r["path"], own.get(r["path"], r["split"])) for r in csv.DictReader(fh)]
    rows = [(p, "unused" if s == "excluded" else s) for p, s in rows]
    with (folder / "splits.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(("path", "split"))
        writer.writerows(rows)
    for key, name in run.data_info.items():
        if key.endswith("_file") and (run.path / str(name)).is_file():
            shutil.copyfile(run.path / str(name), folder / str(name))
    return folder / "splits.csv"


def score(run: Run, holdout: Holdout, figures: Path) -> dict[str, Any]:
    """Score ``run``'s best checkpoint on the held-out images, with ``run``'s own image size,
    channels and normalization; the evaluator's figures go to ``figures``."""
    model = run.load_model("best")
    split_file = run_split_file(run, holdout) if holdout.per_run else holdout.split_file
    overrides = {**holdout.overrides, "split_file": str(split_file), "num_workers": 0}
    overrides.update(
        {k: run.data_info[k] for k in ("mean", "std", "channels") if k in run.data_info}
    )
    init = run.config["data"].get("init_args") or {}
    if "image_size" in init:
        overrides["image_size"] = init["image_size"]
    data = holdout.challenger.load_data(**overrides)
    if list(data.class_names) != list(model.class_names):
        raise UserError(
            f"run '{run.path}' predicts classes {list(model.class_names)}, the holdout has "
            f"{list(data.class_names)}; models over different classes cannot be compared on it"
        )
    figures.mkdir(parents=True, exist_ok=True)
    checkpoint = run.checkpoint("best")
    result: dict[str, Any] = {"split": "holdout", "checkpoint": "checkpoints/best.ckpt"}
    result["checkpoint_sha256"] = sha256(checkpoint)
    result.update(evaluator_for(model)(model, data, "test", figures))
    result.pop("report_lines", None)
    return result
