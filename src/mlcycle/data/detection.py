"""The detection DataModule: COCO or YOLO boxes, verification, splits, box-aware augmentation."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import albumentations as A
import numpy as np
import torch
from albumentations.pytorch import ToTensorV2
from torch.utils.data import Dataset

from mlcycle.data.base import ImageDataModule
from mlcycle.data.boxes import BoxSample, clip_boxes, to_pixels
from mlcycle.data.coco import CocoSet, read_coco, read_coco_splits, split_files
from mlcycle.data.images import UnreadableImage, guess_channels, read_image
from mlcycle.data.layout import data_root
from mlcycle.data.records import (
    BadSample,
    check_strict,
    file_digest,
    no_usable_data,
    parallel_map,
    splits_from_file,
    use_cache,
    write_run_files,
)
from mlcycle.data.segmentation import announce_layout, given_splits, warn_coverage
from mlcycle.data.sources import SPLITS
from mlcycle.data.transforms import resize
from mlcycle.data.yolo import read_yolo
from mlcycle.errors import UserError

SHAPES_ROOT = "data/shapes_det"


@dataclass
class Prepared:
    """One checked image, resized, with its training boxes in the resized image's pixels."""

    image: np.ndarray  # HxWxC uint8 at image_size
    boxes: np.ndarray  # (n, 4) xyxy, clipped, float32
    labels: np.ndarray  # (n,) class indices from 0
    crowd: np.ndarray  # (n,) bool


@dataclass
class BoxIndex:
    samples: list[BoxSample]  # boxes in each image's own pixels (not resized, not clipped)
    splits: list[str]
    class_names: list[str]
    category_ids: list[int]
    channels: int
    skipped: list[tuple[str, str]]
    cache: list[Prepared] | None
    root: Path
    digests: list[tuple[str, int]]
    extra_files: list[tuple[str, str, int, str]]  # annotation/label files: path, sha, bytes, what
    positions: dict[str, list[int]] = field(default_factory=dict)
    layout: str = ""  # the words of the ``layout:`` line


@dataclass
class Listing:
    """What a reader found, before any image is opened."""

    samples: list[BoxSample]
    class_names: list[str]
    category_ids: list[int]
    skipped: list[tuple[str, str]]
    annotations: str  # where the boxes come from, for messages
    given: set[str]  # the splits the layout gives
    text: str  # the layout, for the ``layout:`` line
    files: list[tuple[Path, str]]  # files read besides images and label files, with their role


def prepare(
    sample: BoxSample, image: np.ndarray, size: tuple[int, int], annotations: str
) -> tuple[BoxSample, Prepared]:
    """Check the boxes against the decoded image; scale them to ``size`` (height, width)."""
    height, width = image.shape[:2]
    if sample.size and sample.size != (width, height):
        raise BadSample(
            f"image is {width}x{height} but {annotations} says {sample.size[0]}x{sample.size[1]}"
        )
    boxes = to_pixels(sample, width, height)
    sample = replace(sample, boxes=boxes, normalized=False, size=(width, height))
    clipped = clip_boxes(boxes, width, height)
    outside = (clipped[:, 2] <= clipped[:, 0]) | (clipped[:, 3] <= clipped[:, 1])
    if outside.any():
        box = [round(float(v), 2) for v in boxes[int(np.argmax(outside))]]
        raise BadSample(f"box {box} (x1, y1, x2, y2) lies outside the {width}x{height} image")
    h, w = size
    scale = np.array([w / width, h / height, w / width, h / height])
    resized = resize(h, w)(image=image)["image"]
    return sample, Prepared(
        resized, (clipped * scale).astype(np.float32), sample.labels.copy(), sample.crowd.copy()
    )


def load_prepared(index: BoxIndex, position: int, size: tuple[int, int]) -> Prepared:
    """Sample ``position`` resized, with its boxes in the resized image's pixels."""
    if index.cache is not None:
        return index.cache[position]
    sample = index.samples[position]
    image = read_image(sample.path, index.channels)[0]
    return prepare(sample, image, size, "the annotations")[1]


class BoxDataset(Dataset):
    """Items are ``(image CxHxW float, {"boxes", "labels", "iscrowd"}, sample index)``; boxes
    are ``x1, y1, x2, y2`` pixels of the resized, augmented image, labels class indices from 0.
    Holds the index, not the data module, so worker processes get only what they need."""

    def __init__(
        self, index: BoxIndex, positions: list[int], pipeline: A.Compose, size: tuple[int, int]
    ):
        self.index, self.positions, self.pipeline, self.size = index, positions, pipeline, size

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
        pos = self.positions[i]
        item = load_prepared(self.index, pos, self.size)
        if "bboxes" not in self.pipeline.processors:
            out = self.pipeline(image=item.image)
            out.update(bboxes=item.boxes, labels=item.labels, crowd=item.crowd)
        else:
            out = self.pipeline(
                image=item.image, bboxes=item.boxes, labels=item.labels, crowd=item.crowd
            )
        target = {
            "boxes": torch.as_tensor(np.asarray(out["bboxes"], np.float32).reshape(-1, 4)),
            "labels": torch.as_tensor(np.asarray(out["labels"], np.int64).reshape(-1)),
            "iscrowd": torch.as_tensor(np.asarray(out["crowd"], np.int64).reshape(-1)),
        }
        return out["image"], target, pos


def collate_boxes(
    batch: list[tuple[torch.Tensor, dict[str, torch.Tensor], int]],
) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]], torch.Tensor]:
    """Images stacked (all have ``image_size``), targets as a list, sample indexes."""
    return (
        torch.stack([b[0] for b in batch]),
        [b[1] for b in batch],
        torch.tensor([b[2] for b in batch]),
    )


class DetectionData(ImageDataModule):
    """Images with labelled boxes.

    Args:
        source: ``shapes`` (built-in shapes with exact boxes, written under ``root`` once as a
            COCO file), ``coco`` (a COCO JSON file, ``annotations``, or
            ``root/annotations/instances_<split>.json`` files) or ``yolo`` (``root/images`` +
            ``root/labels`` txt files, split folders, or an Ultralytics ``data.yaml``).
        root: ``yolo``: the data folder (or its ``data.yaml``); ``coco``: the folder that
            ``file_name`` paths are relative to (default: the annotation file's folder);
            ``shapes``: where it is written (``data/shapes_det``).
        annotations: the COCO JSON file, or a folder of ``instances_<split>.json`` files
            (``coco``; default ``root/annotations/`` when it holds such files).
        images_dir: the images folder below ``root`` (``yolo``).
        labels_dir: the label files folder below ``root`` (``yolo``).
        classes: class names in index order (``yolo``; default ``classes.txt`` or ``data.yaml``).
        image_size: images are resized (stretched) to this; boxes are scaled with them.
        channels: 1 or 3; ``None`` takes 1 when every sampled image is grayscale, else 3.
        mean: per-channel normalization mean in 0..1; ``None`` measures it on the train split.
        std: per-channel normalization std in 0..1; ``None`` measures it on the train split.
        val_fraction: share of the images held for validation (unless the layout fixes it;
            a layout without a val split draws this share from train).
        test_fraction: share held out as the test split (drawn from train when the layout
            gives splits but no test split; 0: no test split).
        split_seed: seed of the split.
        split_file: a run's ``splits.csv``; reuses that run's split exactly.
        train_transforms: albumentations transforms for training images; boxes move with the
            image, are clipped to it, and dropped when less than ``min_visibility`` of a box
            stays inside (or it is under a pixel wide).
        min_visibility: share of a box's area that must stay in the image after augmentation.
        batch_size: images per batch.
        num_workers: DataLoader worker processes.
        cache_images: keep decoded, resized images in memory; ``None``: when they fit in 1 GiB.
        allow_changed: resume a run even though its data changed since it started.
        shapes_options: arguments of the built-in generator (``count``, ``size``, ``seed``, ...).
        layout: ``auto`` takes the splits from the layout when it has them (YOLO split folders
            or data.yaml entries, COCO ``instances_<split>.json`` files; split names
            ``train``; ``val``, ``valid``, ``validation``, ``dev``; ``test``, ``testing``; any
            case); ``splits`` insists on them; ``classes`` ignores them (all splits drawn).
        strict: stop with exit 2 when any file is skipped, instead of listing it in
            skipped_files.csv.
    """

    collate_fn = collate_boxes  # targets are dicts of varying length: batch them as lists

    def __init__(
        self,
        source: Literal["shapes", "coco", "yolo"] = "shapes",
        root: str | None = None,
        annotations: str | None = None,
        images_dir: str = "images",
        labels_dir: str = "labels",
        classes: list[str] | None = None,
        image_size: int | list[int] = 128,
        channels: int | None = None,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        split_seed: int = 42,
        split_file: str | None = None,
        train_transforms: list[dict[str, Any]] | None = None,
        min_visibility: float = 0.3,
        batch_size: int = 16,
        num_workers: int = 0,
        cache_images: bool | None = None,
        allow_changed: bool = False,
        shapes_options: dict[str, Any] | None = None,
        layout: str = "auto",
        strict: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if source not in ("shapes", "coco", "yolo"):
            raise UserError(f"data.source '{source}' is not one of: shapes, coco, yolo")
        if layout not in ("auto", "splits", "classes"):
            raise UserError(f"data.layout='{layout}' is not one of auto, splits, classes")
        if not 0 <= min_visibility <= 1:
            raise UserError(f"data.min_visibility={min_visibility} must be in [0, 1]")
        self.check_arguments()  # channels, batch size, image size, augmentations

    # --- what the model and the run record need -----------------------------------------------

    @property
    def num_classes(self) -> int:
        """Object classes, without the background (the task adds it for the detector)."""
        return len(self.index.class_names)

    @property
    def category_ids(self) -> list[int]:
        """The id each class index has in COCO files (YOLO: the index itself)."""
        return self.index.category_ids

    # --- reading ------------------------------------------------------------------------------

    def _where(self) -> str:
        hp = self.hparams
        return str(hp.annotations or hp.root or (SHAPES_ROOT if hp.source == "shapes" else "."))

    def _coco(self) -> CocoSet:
        """One COCO file (``data.annotations``, or the built-in one), or the
        ``instances_<split>.json`` files of a folder (``data.annotations`` or
        ``root/annotations``)."""
        hp = self.hparams
        if hp.source == "shapes":
            root = Path(hp.root or SHAPES_ROOT)
            from mlcycle.data.shapes import write_shape_boxes

            write_shape_boxes(root, **(hp.shapes_options or {}))
            return read_coco(root / "annotations.json")
        keep = hp.layout != "classes"
        if hp.annotations:
            path = Path(hp.annotations).expanduser()
            if path.is_dir():
                files = split_files(path)
                if not files:
                    raise UserError(f"'{path}' holds no instances_<split>.json file")
                root = Path(hp.root).expanduser() if hp.root else path.parent
                return read_coco_splits(files, root, keep)
            if hp.layout == "splits":
                raise UserError(
                    f"data.layout=splits but data.annotations is one file ('{path}'); point it "
                    "at a folder of instances_<split>.json files"
                )
            return read_coco(path, hp.root)
        if hp.root:
            root = Path(hp.root).expanduser()
            files = split_files(root / "annotations") if (root / "annotations").is_dir() else {}
            if files:
                return read_coco_splits(files, root, keep)
        raise UserError(
            "data.annotations is not set; pass --data.annotations PATH.json (COCO), or a "
            "data.root whose annotations/ folder holds instances_<split>.json files"
        )

    def _list(self) -> Listing:
        hp = self.hparams
        if hp.source == "yolo":
            yolo = read_yolo(hp.root, hp.images_dir, hp.labels_dir, hp.classes, hp.layout)
            names = yolo.class_names
            files = [(f, "data.yaml" if f.suffix != ".txt" else "image list") for f in yolo.files]
            return Listing(
                yolo.samples,
                names,
                list(range(len(names))),
                yolo.skipped,
                "its label file",
                yolo.given,
                yolo.text,
                files,
            )
        coco = self._coco()
        names = " ".join(f.name for f in coco.files)
        return Listing(
            coco.samples,
            coco.class_names,
            coco.category_ids,
            coco.skipped,
            names,
            coco.given,
            f"COCO {names}",
            [(f, "annotations") for f in coco.files],
        )

    def _build_index(self) -> BoxIndex:
        hp = self.hparams
        listing = self._list()
        samples, names, skipped = listing.samples, listing.class_names, listing.skipped
        text = announce_layout(listing.text, listing.given, hp)
        where = self._where()
        channels = hp.channels or guess_channels([s.path for s in samples if s.problem is None])

        def check(sample: BoxSample) -> Any:
            if sample.problem:
                return sample.problem
            try:
                image, digest, nbytes = read_image(sample.path, channels)
                checked, item = prepare(sample, image, self.image_size, listing.annotations)
            except UnreadableImage as exc:
                return f"image cannot be read: {exc}"
            except BadSample as exc:
                return str(exc)
            return checked, item, (digest, nbytes)

        results = parallel_map(check, samples, "checking images and boxes")
        skipped += [
            (str(s.path), r) for s, r in zip(samples, results, strict=True) if isinstance(r, str)
        ]
        check_strict(skipped, hp.strict, where)
        keep = [r for r in results if not isinstance(r, str)]
        if not keep:
            raise no_usable_data(where, skipped, "images")
        h, w = self.image_size
        cache = (
            [r[1] for r in keep]
            if use_cache(hp.cache_images, len(keep), h * w * channels)
            else None
        )
        kept = [r[0] for r in keep]
        digests = [r[2] for r in keep]
        splits = self._splits(kept, digests, listing.given)
        if not hp.split_file:
            warn_coverage(
                [set(s.labels[~s.crowd].tolist()) for s in kept],
                [s.split for s in kept],
                names,
                "object",
            )
        files = [(s.label_file, f"labels of {s.path.name}") for s in kept if s.label_file]
        extra = [(str(p), *file_digest(p), what) for p, what in listing.files + files]
        index = BoxIndex(
            kept,
            splits,
            names,
            listing.category_ids,
            channels,
            skipped,
            cache,
            data_root([s.path for s in kept]),
            digests,
            extra,
            layout=text,
        )
        index.positions = {name: [i for i, s in enumerate(splits) if s == name] for name in SPLITS}
        return index

    def _splits(
        self, samples: list[BoxSample], digests: list[tuple[str, int]], given: set[str]
    ) -> list[str]:
        hp = self.hparams
        if hp.split_file:
            return splits_from_file(hp.split_file, [s.path for s in samples])
        hashes = [d[0] for d in digests]
        return given_splits([s.split for s in samples], given, hashes, hp, self._where())

    def prepared(self, position: int) -> Prepared:
        """Sample ``position`` resized, with its boxes in the resized image's pixels."""
        return load_prepared(self.index, position, self.image_size)

    def raw_image(self, position: int) -> np.ndarray:
        return self.prepared(position).image

    def original(self, position: int) -> BoxSample:
        """Sample ``position`` with its boxes and size in the image file's own pixels."""
        return self.index.samples[position]

    # --- datasets and loaders -----------------------------------------------------------------

    def pipeline(self, augment: bool) -> A.Compose:
        """Augmentations (training only), normalization, tensor; boxes follow the image. Without
        augmentations the boxes pass through unchanged (no box processor)."""
        mean, std = self.normalization
        steps = [*(self.augment if augment else []), A.Normalize(mean=mean, std=std), ToTensorV2()]
        if not (augment and self.augment):
            return A.Compose(steps)
        boxes = A.BboxParams(
            format="pascal_voc",
            label_fields=["labels", "crowd"],
            min_visibility=self.hparams.min_visibility,
            min_width=1,
            min_height=1,
            clip=True,
            filter_invalid_bboxes=True,
        )
        return A.Compose(steps, bbox_params=boxes, seed=torch.initial_seed() % 2**32)

    def dataset(self, split: str, augment: bool = False) -> BoxDataset:
        if split not in SPLITS:
            raise UserError(f"unknown split '{split}'; use one of {', '.join(SPLITS)}")
        return BoxDataset(
            self.index, self.index.positions[split], self.pipeline(augment), self.image_size
        )

    # --- the run record -----------------------------------------------------------------------

    def manifest_rows(self) -> list[tuple[str, str, int, str, str, str]]:
        index, source = self.index, self.hparams.source
        rows = [
            (str(s.path), sha, n, f"{len(s.labels)} objects", split, source)
            for s, (sha, n), split in zip(index.samples, index.digests, index.splits, strict=True)
        ]
        rows += [(path, sha, n, what, "", source) for path, sha, n, what in index.extra_files]
        return rows

    def describe(self) -> dict[str, Any]:
        mean, std = self.normalization
        index = self.index
        return {
            "task": "detection",
            "class_names": self.class_names,
            "category_ids": self.category_ids,
            "num_classes": self.num_classes,
            "channels": self.in_channels,
            "image_size": list(self.image_size),
            "resize": "stretch to image_size (albumentations Resize, bilinear); boxes scaled with it",
            "mean": mean,
            "std": std,
            "input_range": "uint8 0..255 scaled to 0..1, then (x - mean) / std",
            "boxes": "x1, y1, x2, y2 in pixels of the resized image; detector label = class index + 1 (0 is background)",
            "source": self.hparams.source,
            "layout": index.layout,
            "split_counts": {s: len(p) for s, p in index.positions.items()},
            "objects": int(sum(len(s.labels) for s in index.samples)),
            "images_without_objects": int(sum(len(s.labels) == 0 for s in index.samples)),
            "skipped_files": len(index.skipped),
            "fingerprint": self.fingerprint,
        }

    def write_records(self, run_dir: Path) -> None:
        """``splits.csv`` (``path,image_id,split``), ``data_manifest.csv``,
        ``skipped_files.csv``, ``data.json``."""
        index = self.index
        rows = [
            (str(s.path), s.image_id, split)
            for s, split in zip(index.samples, index.splits, strict=True)
        ]
        write_run_files(
            run_dir,
            self.manifest_rows(),
            ("path", "image_id", "split"),
            rows,
            index.skipped,
            self.describe(),
        )
