"""The detection DataModule: images with labelled boxes, and box-aware augmentation.

Where the boxes come from is a source in :data:`DETECTION_SOURCES` (``coco``, ``yolo``,
``shapes``), one file each; every source yields :class:`~mlcycle.data.boxes.BoxSample` rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import albumentations as A
import numpy as np
import torch
from albumentations.pytorch import ToTensorV2

from mlcycle.core.errors import UserError
from mlcycle.core.registry import Registry
from mlcycle.data.base import ImageDataModule
from mlcycle.data.boxes import BoxSample, clip_boxes, to_pixels
from mlcycle.data.file_facts import Facts, image_kind
from mlcycle.data.images import UnreadableImage, decode_image, read_bytes
from mlcycle.data.index import Checked, Decoder, IndexDataset, Listing, resizer
from mlcycle.data.skipped import BadSample

# A source is ``fn(**keys) -> Listing`` (with ``class_names``, and ``category_ids`` when its
# files number the classes) of BoxSample rows; it gets every data key (root, annotations,
# images_dir, labels_dir, classes, layout, shapes_options, ...) and ignores the rest. Plugins
# register through the ``mlcycle.detection_sources`` entry-point group.
DETECTION_SOURCES: Registry[Callable[..., Listing]] = Registry(
    "detection data source", "data.source", "mlcycle.detection_sources", ["mlcycle.data"]
)
register_detection_source = DETECTION_SOURCES.register


@dataclass
class Prepared:
    """One checked image, resized, with its training boxes in the resized image's pixels."""

    image: np.ndarray  # HxWxC uint8 at image_size
    boxes: np.ndarray  # (n, 4) xyxy, clipped, float32
    labels: np.ndarray  # (n,) class indices from 0
    crowd: np.ndarray  # (n,) bool


def check_boxes(sample: BoxSample, width: int, height: int) -> tuple[BoxSample, np.ndarray]:
    """Check the boxes against the image's size: the sample with its boxes in pixels, and the
    boxes clipped to the image."""
    if sample.size and sample.size != (width, height):
        raise BadSample(
            f"image is {width}x{height} but {sample.annotations or 'the annotations'} says "
            f"{sample.size[0]}x{sample.size[1]}"
        )
    boxes = to_pixels(sample, width, height)
    sample = replace(sample, boxes=boxes, normalized=False, size=(width, height))
    clipped = clip_boxes(boxes, width, height)
    outside = (clipped[:, 2] <= clipped[:, 0]) | (clipped[:, 3] <= clipped[:, 1])
    if outside.any():
        box = [round(float(v), 2) for v in boxes[int(np.argmax(outside))]]
        raise BadSample(f"box {box} (x1, y1, x2, y2) lies outside the {width}x{height} image")
    return sample, clipped


def prepare(
    sample: BoxSample, image: np.ndarray, size: tuple[int, int]
) -> tuple[BoxSample, Prepared]:
    """Check the boxes against the decoded image; scale them to ``size`` (height, width)."""
    height, width = image.shape[:2]
    sample, clipped = check_boxes(sample, width, height)
    h, w = size
    scale = np.array([w / width, h / height, w / width, h / height])
    resized = resizer(h, w)(image=image)["image"]
    return sample, Prepared(
        resized, (clipped * scale).astype(np.float32), sample.labels.copy(), sample.crowd.copy()
    )


def box_needs(sample: BoxSample, channels: int) -> list[tuple[Path, str]]:
    needs = [(sample.path, image_kind(channels))]
    return needs + [(sample.label_file, "file")] if sample.label_file else needs


def check_sample(sample: BoxSample, facts: list[Facts], class_names: list[str]) -> Checked:
    """A readable image whose boxes lie in it; its label file is one of its files."""
    image = facts[0]
    if "unread" in image or "error" in image:
        raise BadSample(f"image cannot be read: {image.get('unread') or image['error']}")
    checked, _ = check_boxes(sample, image["width"], image["height"])
    files = [(str(sample.path), image["sha256"], image["bytes"], f"{len(sample.labels)} objects")]
    if sample.label_file:
        labels = facts[1]
        if "unread" in labels:
            raise BadSample(f"label file cannot be read: {labels['unread']}")
        what = f"labels of {sample.path.name}"
        files.append((str(sample.label_file), labels["sha256"], labels["bytes"], what))
    classes = {class_names[c] for c in sample.labels[~sample.crowd].tolist()}
    return Checked(checked, files, classes)


def load_sample(sample: BoxSample, channels: int, size: tuple[int, int]) -> Prepared:
    """The resized image and boxes of one checked sample."""
    try:
        image = decode_image(read_bytes(sample.path), channels)
    except UnreadableImage as exc:
        raise BadSample(f"image cannot be read: {exc}") from exc
    return prepare(sample, image, size)[1]


class BoxDataset(IndexDataset):
    """Items are ``(image CxHxW float, {"boxes", "labels", "iscrowd"}, sample index)``; boxes
    are ``x1, y1, x2, y2`` pixels of the resized, augmented image, labels class indices from 0."""

    def transform(
        self, item: Prepared, position: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
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
        return out["image"], target, position


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
            ``root/annotations/instances_<split>.json`` files), ``yolo`` (``root/images`` +
            ``root/labels`` txt files, split folders, or an Ultralytics ``data.yaml``) or a
            source a plugin registered.
        root: ``yolo``: the data folder (or its ``data.yaml``); ``coco``: the folder that
            ``file_name`` paths are relative to (default: the annotation file's folder);
            ``shapes``: where it is written (``data/shapes_det``).
        annotations: the COCO JSON file, or a folder of ``instances_<split>.json`` files
            (``coco``; default ``root/annotations/`` when it holds such files).
        images_dir: the images folder below ``root`` (``yolo``).
        labels_dir: the label files folder below ``root`` (``yolo``).
        classes: class names in index order (``yolo``; default ``classes.txt`` or ``data.yaml``).
        min_visibility: share of a box's area that must stay in the image after augmentation;
            boxes are clipped to the image and dropped below it (or under a pixel wide).
        shapes_options: arguments of the built-in generator (``count``, ``size``, ``seed``, ...).
        image_size: images are resized (stretched) to this; boxes are scaled with them
            (``None``: the pretrained weights' size, else 128).
        batch_size: images per batch.
    """

    collate_fn = collate_boxes  # targets are dicts of varying length: batch them as lists
    dataset_type = BoxDataset
    data_kind = "detection"
    coverage = "object"
    split_column = "image_id"
    resize = "stretch to image_size (albumentations Resize, bilinear); boxes scaled with it"
    default_image_size = 128

    def __init__(
        self,
        source: str = "shapes",
        root: str | None = None,
        annotations: str | None = None,
        images_dir: str = "images",
        labels_dir: str = "labels",
        classes: list[str] | None = None,
        min_visibility: float = 0.3,
        shapes_options: dict[str, Any] | None = None,
        image_size: int | list[int] | None = None,
        batch_size: int = 16,
        **kwargs: Any,
    ) -> None:
        super().__init__(image_size=image_size, batch_size=batch_size, **kwargs)
        if not 0 <= min_visibility <= 1:
            raise UserError(f"data.min_visibility={min_visibility} must be in [0, 1]")

    @property
    def category_ids(self) -> list[int]:
        """The id each class index has in COCO files (YOLO: the index itself)."""
        return self.index.category_ids

    def list_samples(self) -> Listing:
        listing = DETECTION_SOURCES.get(self.hparams.source)(**self.hparams)
        # A sample a reader already found unusable is never opened.
        listing.skipped += [(str(s.path), s.problem) for s in listing.samples if s.problem]
        listing.samples = [s for s in listing.samples if not s.problem]
        return listing

    def decoder(self, channels: int, class_names: list[str] | None) -> Decoder:
        return Decoder(
            needs=partial(box_needs, channels=channels),
            check=partial(check_sample, class_names=class_names),
            load=partial(load_sample, channels=channels, size=self.image_size),
        )

    def raw_image(self, position: int) -> np.ndarray:
        return self.prepared(position).image

    def original(self, position: int) -> BoxSample:
        """Sample ``position`` with its boxes and size in the image file's own pixels."""
        return self.index.samples[position]

    def split_value(self, sample: BoxSample) -> int:
        return sample.image_id

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

    def describe(self) -> dict[str, Any]:
        samples = self.index.samples
        return {
            "task": "detection",
            **super().describe(),
            "category_ids": self.category_ids,
            "boxes": "x1, y1, x2, y2 in pixels of the resized image; detector label = class index + 1 (0 is background)",
            "objects": int(sum(len(s.labels) for s in samples)),
            "images_without_objects": int(sum(len(s.labels) == 0 for s in samples)),
        }
