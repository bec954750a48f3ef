"""The image classification DataModule: labelled images from a registered source."""

from __future__ import annotations

import csv
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import albumentations as A
import numpy as np
import torch

from mlcycle.core.errors import UserError
from mlcycle.data.base import ImageDataModule
from mlcycle.data.file_facts import Facts, image_kind
from mlcycle.data.images import UnreadableImage, decode_image, read_bytes
from mlcycle.data.index import Checked, Decoder, Index, IndexDataset, Listing, resizer
from mlcycle.data.relabel import ROLE as RELABEL_ROLE
from mlcycle.data.relabel import relabel_samples
from mlcycle.data.skipped import BadSample
from mlcycle.data.sources import Sample, load_samples


def quarantined(path: Path) -> set[str]:
    """Resolved paths listed in a ``quarantine.csv`` (columns ``path,reason``)."""
    if not path.is_file():
        raise UserError(
            f"quarantine list '{path}' does not exist; run scripts/validate_data.py or unset data.quarantine"
        )
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if "path" not in (reader.fieldnames or []):
            raise UserError(f"quarantine list '{path}' has no 'path' column")
        return {str(Path(row["path"]).resolve()) for row in reader if row.get("path")}


def image_needs(sample: Any, channels: int) -> list[tuple[Path, str]]:
    return [(sample.path, image_kind(channels))]


def check_labelled(sample: Sample, facts: list[Facts]) -> Checked:
    """A readable image is usable; its file row's role is the label."""
    image = facts[0]
    if "unread" in image or "error" in image:
        raise BadSample(image.get("unread") or image["error"])
    row = (str(sample.path), image["sha256"], image["bytes"], sample.label)
    return Checked(sample, [row], {sample.label}, stratum=sample.label)


def load_labelled(sample: Sample, channels: int, size: tuple[int, int]) -> np.ndarray:
    """The resized image of one sample."""
    try:
        image = decode_image(read_bytes(sample.path), channels)
    except UnreadableImage as exc:
        raise BadSample(str(exc)) from exc
    return resizer(*size)(image=image)["image"]


def split_words(hp: Any, samples: list[Sample], found: Any) -> str:
    """The layout's words, with the group or time column that splits it; a column the
    manifest or query lacks is one line."""
    if hp.group_column and hp.time_column:
        raise UserError(
            "data.group_column and data.time_column both set; a split is either by group or by time"
        )
    column = hp.group_column or hp.time_column
    if not column:
        return found.layout
    key = "group_column" if hp.group_column else "time_column"
    columns = sorted({c for s in samples for c in (s.meta or {})})
    if samples and column not in columns:
        raise UserError(
            f"data.{key} '{column}' is not a column of the {hp.source} source's rows "
            f"(other columns: {', '.join(columns) or 'none'}); name one, or unset data.{key}"
        )
    how = "group" if hp.group_column else "time"
    return f"{found.layout}; split by {how} ('{column}')"


class ImageDataset(IndexDataset):
    """Items are ``(image tensor, class index, sample index)``; the index finds the file again."""

    def __init__(self, index: Index, positions: list[int], pipeline: A.Compose) -> None:
        super().__init__(index, positions, pipeline)
        self.lookup = {name: i for i, name in enumerate(index.class_names)}

    def transform(self, item: np.ndarray, position: int) -> tuple[torch.Tensor, int, int]:
        label = self.lookup[self.index.samples[position].label]
        return self.pipeline(image=item)["image"], label, position


class ImageClassificationData(ImageDataModule):
    """Labelled images from a folder, a CSV manifest, a SQL query or the built-in digits.

    Args:
        source: ``folder`` (one subfolder per class), ``csv`` (a ``path,label`` manifest),
            ``sql`` (``url`` + ``query``, paths under ``root``), ``digits`` (scikit-learn's
            handwritten digits, written under ``root`` once) or a source a plugin registered.
        root: the image folder (``folder``), or where the digits are written (``digits``).
        manifest: the CSV file (``csv``); image paths are relative to its folder.
        url: a SQLAlchemy database URL (``sql``), e.g. ``sqlite:///labels.db``.
        query: the SQL query (``sql``) returning at least ``path`` and ``label`` columns.
        path_column: the manifest's column of image paths.
        label_column: the manifest's column of class labels.
        source_options: extra keyword arguments for a source registered by a plugin.
        quarantine: a ``quarantine.csv`` (from ``validate_data.py``); its files are left out.
        group_column: a manifest's or query's column (a patient, a camera): the images of one
            value share a split (each group draws it) and, in compare.py/tune.py, a fold.
        time_column: a manifest's or query's column of dates or numbers (a capture date): the
            oldest images train, the latest validate and test; folds are time-ordered.
        relabel: a CSV of ``path,label`` lines (``mlcycle label-issues``) whose labels replace
            the source's, for this run only; the user's files are not touched.
    """

    dataset_type = ImageDataset
    data_kind = "classification"

    def __init__(
        self,
        source: str = "digits",
        root: str | None = None,
        manifest: str | None = None,
        url: str | None = None,
        query: str | None = None,
        path_column: str = "path",
        label_column: str = "label",
        source_options: dict[str, Any] | None = None,
        quarantine: str | None = None,
        group_column: str | None = None,
        time_column: str | None = None,
        relabel: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.relabelled = 0  # labels data.relabel changed

    @property
    def class_counts(self) -> list[int]:
        counts = Counter(self.index.samples[p].label for p in self.index.positions["train"])
        return [counts.get(name, 0) for name in self.class_names]

    def list_samples(self) -> Listing:
        hp = self.hparams
        options = dict(hp.source_options or {})
        options.update(root=hp.root, manifest=hp.manifest, path_column=hp.path_column)
        options.update(label_column=hp.label_column, url=hp.url, query=hp.query, layout=hp.layout)
        found = load_samples(hp.source, **options)
        samples = found.samples
        if hp.quarantine:
            held = quarantined(Path(hp.quarantine))
            samples = [s for s in samples if str(s.path.resolve()) not in held]
        files = []
        if hp.relabel:  # hashed into the manifest: a relabelled run has another fingerprint
            samples, self.relabelled = relabel_samples(samples, hp.relabel)
            files.append((Path(hp.relabel), RELABEL_ROLE))
        given = {s.split for s in samples if s.split}
        where = hp.manifest or hp.root or hp.source
        words = split_words(hp, samples, found)
        return Listing(samples, where, found.skipped, given, words, files=files)

    def decoder(self, channels: int, class_names: list[str] | None) -> Decoder:
        return Decoder(
            needs=partial(image_needs, channels=channels),
            check=check_labelled,
            load=partial(load_labelled, channels=channels, size=self.image_size),
        )

    def check_classes(self, class_names: list[str], where: str) -> None:
        if len(class_names) < 2:
            found = (
                f"only class '{class_names[0]}'" if class_names else "no readable training images"
            )
            raise UserError(f"'{where}' has {found}; classification needs at least two classes")

    def raw_image(self, position: int) -> np.ndarray:
        """The resized uint8 image of sample ``position`` (for galleries of mistakes)."""
        return self.prepared(position)

    def describe(self) -> dict[str, Any]:
        counts = dict(zip(self.class_names, self.class_counts, strict=True))
        relabel = {"relabel": self.hparams.relabel, "relabelled": self.relabelled}
        return {**super().describe(), "train_class_counts": counts, **relabel}
