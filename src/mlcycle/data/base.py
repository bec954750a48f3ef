"""The one base of the image data modules (classification, segmentation, detection).

It owns what does not depend on the kind of label: the shared arguments, the index (every
file hashed and checked once on all cores and remembered in the index cache, unusable samples
skipped and listed, content-stable splits), the decoded images kept in memory when they fit,
normalization, the loaders and the run record (manifest, fingerprint, ``splits.csv``). A
subclass keeps its sample type, decoding and transforms, through a few hooks:

* ``list_samples()``: a :class:`~mlcycle.data.index.Listing` from its registered sources;
* ``decoder(channels, class_names)``: a :class:`~mlcycle.data.index.Decoder`: the facts each
  sample needs of its files, the check of a sample against them (raising
  :class:`~mlcycle.data.skipped.BadSample` with the reason it cannot be used), and the decoding
  of its item;
* ``dataset_type``: an :class:`~mlcycle.data.index.IndexDataset` that turns a decoded item
  into a batch item;
* ``raw_image(position)``, ``split_value(sample)`` (the second column of ``splits.csv``) and
  ``describe()``, which adds the task's own entries to the shared ones;
* ``data_kind``: the kind of data by name (``classification``, ``segmentation``,
  ``detection``). The stages look up their part for this kind by that name (the quality
  tools' checks: ``mlcycle.quality.kinds``), never by the class;
* ``run_name``: the default run directory's name (``runs/<run_name>/<time>``), or None for
  the config's name. Any data module may answer it (``TabularData``: its file's stem); train.py
  asks it once the data module exists.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import albumentations as A
import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader

from mlcycle.core.device import available_cores, resolve_num_workers
from mlcycle.core.errors import UserError
from mlcycle.data.images import guess_channels
from mlcycle.data.index import (
    Decoder,
    FileRow,
    Index,
    IndexDataset,
    Listing,
    check_all,
    gather_facts,
    make_splits,
    use_cache,
)
from mlcycle.data.index_cache import IndexCache, open_index_cache
from mlcycle.data.layout import LAYOUTS, announce, data_root
from mlcycle.data.loaders import split_loader
from mlcycle.data.manifest import check_unchanged, fingerprint, write_run_files
from mlcycle.data.normalization import (
    measure_normalization,
    sample_positions,
    weights_normalization,
)
from mlcycle.data.skipped import check_strict, no_usable_data
from mlcycle.data.splits import SPLITS, describe_draw
from mlcycle.data.transforms import build_augmentations, check_pixels, finish


def one_per_folder(paths: list[str]) -> list[Path]:
    """A path of each folder: enough for :func:`data_root`, and fast on a million files."""
    return [Path(p) for p in {os.path.dirname(p): p for p in paths}.values()]


class ImageDataModule(LightningDataModule):
    """The arguments every image data module shares; a subclass passes them on as ``**kwargs``.

    Args:
        image_size: images are resized (stretched) to this: one number for a square, or
            ``[height, width]``; masks and boxes follow the image. ``None``: the pretrained
            weights' input size (``preprocessing``), else 32 (segmentation 64, detection 128).
        channels: 1 or 3; ``None`` takes 1 when every sampled image is grayscale, else 3.
        mean: per-channel normalization mean in 0..1; ``None``: the pretrained weights' mean
            (``preprocessing``), else measured on the train split.
        std: per-channel normalization std in 0..1; ``None``: as ``mean``.
        preprocessing: the input the model's pretrained weights expect (``mean``, ``std``,
            ``image_size``, ...); filled by ``train.py`` from the model's weights, recorded in
            data.json and model.json (docs/pretrained.md).
        val_fraction: share of the images held for validation (of each class, for
            classification), unless the layout gives a val split.
        test_fraction: share held out as the test split, never used by training (drawn from
            train when the layout gives splits but no test split; 0: no test split).
        split_seed: seed of the split; a file's split depends only on it and the file's contents.
        split_file: a run's ``splits.csv``; reuses that run's split exactly.
        train_transforms: albumentations transforms for training images only; geometric ones
            move a mask or boxes with the image, pixel ones touch the image only.
        batch_size: images per batch.
        num_workers: DataLoader worker processes; ``auto``: ``min(8, cores - 1,
            max(1, batch_size // 16))``, 0 on a one-core machine.
        cache_images: keep decoded, resized images in memory; ``None`` caches when they fit in 1 GiB.
            They are decoded in one parallel pass when the first loader is made.
        index_cache: the folder of the index cache (each file's hash, size and checks, kept
            across runs, so unchanged files are not read again); ``None`` or ``true``:
            ``$MLCYCLE_CACHE_DIR``, else ``$XDG_CACHE_HOME/mlcycle`` or ``~/.cache/mlcycle``;
            ``false``: no cache. Never inside the data.
        index_workers: processes that read and hash files not in the index cache (and decode
            images into memory); ``auto``: one per available core.
        allow_changed: resume a run even though its data changed since it started.
        layout: ``auto`` takes the splits from the layout when it has them (split folders
            ``train``; ``val``, ``valid``, ``validation``, ``dev``; ``test``, ``testing``; any
            case; a manifest's ``split`` column, VOC lists, a YOLO data.yaml, COCO
            ``instances_<split>.json`` files); ``splits`` insists on them; ``classes`` ignores
            them (class folders: every folder is a class) and draws every split.
        strict: stop with exit 2 when any file or manifest row would be skipped, instead of
            listing it in ``skipped_files.csv`` and going on.
    """

    collate_fn: Callable[[list[Any]], Any] | None = None  # None: torch's default collate
    dataset_type: type[IndexDataset] = IndexDataset
    data_kind = ""  # the kind of data, by the name the stages' registries know it (see above)
    what = "images"  # what a sample is, in messages
    coverage = "image"  # what holds a class, in messages on the classes of given splits
    split_column = "label"  # the second column of splits.csv: split_value(sample)
    resize = "stretch to image_size (albumentations Resize, bilinear)"
    default_image_size = 32  # without data.image_size and without pretrained weights

    def __init__(
        self,
        image_size: int | list[int] | None = None,
        channels: int | None = None,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        preprocessing: dict[str, Any] | None = None,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        split_seed: int = 42,
        split_file: str | None = None,
        train_transforms: list[dict[str, Any]] | None = None,
        batch_size: int = 64,
        num_workers: int | Literal["auto"] = 0,
        cache_images: bool | None = None,
        index_cache: bool | str | None = None,
        index_workers: int | Literal["auto"] = "auto",
        allow_changed: bool = False,
        layout: str = "auto",
        strict: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()  # the subclass's arguments too (Lightning walks the frames)
        if channels not in (None, 1, 3):
            raise UserError(
                f"data.channels={channels} is not supported; use 1, 3 or leave it unset"
            )
        if batch_size < 1:
            raise UserError(f"data.batch_size={batch_size} must be at least 1")
        if num_workers != "auto" and (isinstance(num_workers, bool) or int(num_workers) < 0):
            raise UserError(f"data.num_workers={num_workers} must be 0 or more, or 'auto'")
        if index_workers != "auto" and (isinstance(index_workers, bool) or int(index_workers) < 1):
            raise UserError(f"data.index_workers={index_workers} must be 1 or more, or 'auto'")
        if layout not in LAYOUTS:
            raise UserError(f"data.layout='{layout}' is not one of {', '.join(LAYOUTS)}")
        self.weights_input = dict(preprocessing or {})
        default = self.weights_input.get("image_size", self.default_image_size)
        size = default if image_size is None else image_size
        self.image_size = check_pixels(size, "data.image_size")
        self.augment = build_augmentations(train_transforms, "data.train_transforms")
        self._index: Index | None = None
        self._norm: tuple[list[float], list[float]] | None = None

    # --- what a subclass provides --------------------------------------------------------------

    @property
    def run_name(self) -> str | None:
        """The default run directory's name; None: the config's (image folders keep it)."""
        return None

    def list_samples(self) -> Listing:
        raise NotImplementedError

    def decoder(self, channels: int, class_names: list[str] | None) -> Decoder:
        raise NotImplementedError

    def raw_image(self, position: int) -> np.ndarray:
        """The resized uint8 image (HxWxC) of sample ``position``."""
        raise NotImplementedError

    def split_value(self, sample: Any) -> Any:
        return sample.label

    def check_classes(self, class_names: list[str], where: str) -> None:
        """Stop when the classes cannot make a task (classification: fewer than two)."""

    def item_bytes(self, channels: int) -> int:
        """Bytes of one cached item, to decide ``cache_images: null``."""
        height, width = self.image_size
        return height * width * channels

    # --- what the model and the run record need -------------------------------------------------

    @property
    def index(self) -> Index:
        if self._index is None:
            self._index = self._build_index()
        return self._index

    @property
    def class_names(self) -> list[str]:
        return self.index.class_names

    @property
    def num_classes(self) -> int:
        return len(self.index.class_names)

    @property
    def in_channels(self) -> int:
        return self.index.channels

    @property
    def normalization(self) -> tuple[list[float], list[float]]:
        """``data.mean`` / ``data.std`` when given, else the pretrained weights' (averaged for
        grayscale), else measured on up to 1,024 training images (a fixed sample)."""
        if self._norm is None:
            hp, c = self.hparams, self.in_channels
            if hp.mean is None and hp.std is None and "mean" in self.weights_input:
                self._norm = weights_normalization(self.weights_input, c)
            elif hp.mean is not None and hp.std is not None:
                if len(hp.mean) != c or len(hp.std) != c:
                    raise UserError(f"data.mean and data.std need {c} value(s), one per channel")
                self._norm = (list(hp.mean), list(hp.std))
            else:
                self.index.load_items(self.index_workers)  # one parallel pass, not 1,024 reads
                picks = sample_positions(self.index.positions["train"])
                mean, std = measure_normalization((self.raw_image(p) for p in picks), c)
                self._norm = (
                    list(mean if hp.mean is None else hp.mean),
                    list(std if hp.std is None else hp.std),
                )
        return self._norm

    def prepared(self, position: int) -> Any:
        """The decoded, resized item of sample ``position`` (before augmentation)."""
        return self.index.item(position)

    # --- the index ------------------------------------------------------------------------------

    @property
    def index_workers(self) -> int:
        """``data.index_workers`` as a count (``auto``: the available cores)."""
        workers = self.hparams.index_workers
        return available_cores() if workers == "auto" else int(workers)

    def _index_cache(self, listing: Listing) -> IndexCache | None:
        """The index cache, refused inside the data: the root, the folders of the samples'
        images and of the other files read."""
        hp = self.hparams
        folders = {Path(d) for d in {os.path.dirname(s.path) for s in listing.samples}}
        folders |= {Path(p).parent for p, _ in listing.files}
        folders |= {Path(hp[k]) for k in ("root", "manifest") if hp.get(k)}
        folders = {f.resolve() for f in folders}
        return open_index_cache(hp.index_cache, {f.parent if f.is_file() else f for f in folders})

    def _extra_files(self, listing: Listing, cache: IndexCache | None) -> list[FileRow]:
        """Rows of the files a source read besides the samples' (annotations, data.yaml)."""
        jobs = [(str(p), "file") for p, _ in listing.files]
        facts = gather_facts(jobs, cache, self.index_workers, "hashing annotations")
        rows = []
        for (path, what), job in zip(listing.files, jobs, strict=True):
            found = facts[job]
            if "unread" in found:
                raise UserError(f"'{path}' cannot be read: {found['unread']}")
            rows.append((str(path), found["sha256"], found["bytes"], what))
        return rows

    def _build_index(self) -> Index:
        hp = self.hparams
        listing = self.list_samples()
        words = describe_draw(listing.given, hp.val_fraction, hp.test_fraction, hp.split_file)
        text = f"{listing.text}; {words}" if words else listing.text
        announce(text)
        if listing.class_names is not None:
            self.check_classes(listing.class_names, listing.where)
        samples = listing.samples
        channels = hp.channels or guess_channels([Path(s.path) for s in samples[:64]])
        decoder = self.decoder(channels, listing.class_names)
        cache = self._index_cache(listing)
        kept, skipped = check_all(decoder, samples, self.what, cache, self.index_workers)
        skipped = listing.skipped + skipped
        check_strict(skipped, hp.strict, listing.where)
        if not kept:
            raise no_usable_data(listing.where, skipped, self.what)
        names = listing.class_names
        if names is None:
            train = [d.classes for d in kept if d.sample.split in (None, "train")]
            names = sorted(set().union(*train))
            self.check_classes(names, listing.where)
        index = Index(
            samples=[d.sample for d in kept],
            splits=make_splits(kept, listing, hp, self.coverage),
            class_names=names,
            category_ids=listing.category_ids or list(range(len(names))),
            channels=channels,
            skipped=skipped,
            root=data_root(one_per_folder([d.files[0][0] for d in kept])),
            files=[d.files for d in kept],
            extra_files=self._extra_files(listing, cache),
            load=decoder.load,
            keep_items=use_cache(hp.cache_images, len(kept), self.item_bytes(channels)),
            layout=text,
        )
        index.positions = {s: [i for i, x in enumerate(index.splits) if x == s] for s in SPLITS}
        return index

    # --- datasets and loaders -------------------------------------------------------------------

    def pipeline(self, augment: bool) -> A.Compose:
        """Augmentations (training only), normalization, tensor."""
        mean, std = self.normalization
        # Albumentations keeps its own random state: seed it from torch's (set by seed_everything).
        seed = torch.initial_seed() % 2**32 if augment else None
        return finish(self.augment if augment else [], mean, std, seed=seed)

    def dataset(self, split: str, augment: bool = False) -> IndexDataset:
        if split not in SPLITS:
            raise UserError(f"unknown split '{split}'; use one of {', '.join(SPLITS)}")
        self.index.load_items(self.index_workers)  # data.cache_images: decoded once, in parallel
        return self.dataset_type(self.index, self.index.positions[split], self.pipeline(augment))

    @property
    def num_workers(self) -> int:
        """``data.num_workers`` as a count (``auto`` resolved from the cores and the batch size)."""
        hp = self.hparams
        return resolve_num_workers(hp.num_workers, hp.batch_size, available_cores())

    def _loader(self, split: str, shuffle: bool, augment: bool) -> DataLoader:
        dataset = self.dataset(split, augment=augment)
        hp = self.hparams
        return split_loader(
            dataset, split, hp.batch_size, self.num_workers, shuffle, type(self).collate_fn
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True, augment=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False, augment=False)

    def split_dataloader(self, split: str) -> DataLoader:
        """Any split without augmentation; used by evaluation, never by training."""
        return self._loader(split, shuffle=False, augment=False)

    # --- the run record -------------------------------------------------------------------------

    def manifest_rows(self) -> list[tuple[str, str, int, str, str, str]]:
        """``(path, sha256, bytes, what, split, source)`` of every file the data is read from."""
        index, source = self.index, self.hparams.source
        rows = [
            (path, sha, size, what, split, source)
            for files, split in zip(index.files, index.splits, strict=True)
            for path, sha, size, what in files
        ]
        return rows + [(path, sha, n, what, "", source) for path, sha, n, what in index.extra_files]

    @property
    def fingerprint(self) -> str:
        """sha256 over every file's path below the data root, content hash, role and split."""
        return fingerprint(self.manifest_rows(), self.index.root)

    def check_unchanged_since(self, run_dir: Path) -> None:
        """Stop a resume whose data changed since the run started, unless allowed."""
        check_unchanged(run_dir, self.manifest_rows(), self.hparams.allow_changed)

    def describe(self) -> dict[str, Any]:
        """What a later step (evaluate, export, serve) needs to rebuild the input pipeline."""
        mean, std = self.normalization
        index = self.index
        return {
            "class_names": self.class_names,
            "num_classes": self.num_classes,
            "channels": self.in_channels,
            "image_size": list(self.image_size),
            "resize": self.resize,
            "mean": mean,
            "std": std,
            "input_range": "uint8 0..255 scaled to 0..1, then (x - mean) / std",
            **({"weights_preprocessing": self.weights_input} if self.weights_input else {}),
            "source": self.hparams.source,
            "layout": index.layout,
            "split_counts": {s: len(p) for s, p in index.positions.items()},
            "skipped_files": len(index.skipped),
            "fingerprint": self.fingerprint,
        }

    def write_records(self, run_dir: Path) -> None:
        """``splits.csv`` (``path,<split_column>,split``), ``data_manifest.csv``,
        ``skipped_files.csv`` and ``data.json``."""
        index = self.index
        rows = [
            (files[0][0], self.split_value(sample), split)
            for sample, files, split in zip(index.samples, index.files, index.splits, strict=True)
        ]
        header = ("path", self.split_column, "split")
        write_run_files(run_dir, self.manifest_rows(), header, rows, index.skipped, self.describe())
