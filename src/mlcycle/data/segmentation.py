"""The segmentation DataModule: images with per-pixel class masks.

A mask is a PNG of class indices (mode ``L`` or ``P``: for a palette PNG the index is the
class, not the colour), the same size as its image. The value ``ignore_index`` (255, VOC's
object border) marks pixels that count for nothing. Where the pairs come from is a source in
:data:`SEGMENTATION_SOURCES` (``masks``, ``voc``, ``shapes``), one file each.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from mlcycle.core.errors import UserError
from mlcycle.core.registry import Registry
from mlcycle.data.base import ImageDataModule
from mlcycle.data.file_facts import Facts, image_kind, register_facts
from mlcycle.data.images import UnreadableImage, decode_image, read_bytes
from mlcycle.data.index import Checked, Decoder, IndexDataset, Listing, resizer
from mlcycle.data.skipped import BadSample

INDEX_MODES = {"L", "P", "I", "I;16", "I;16B", "I;16L", "I;16N"}

# A source is ``fn(**keys) -> Listing`` (with ``class_names``) of :class:`MaskSample`; it gets
# every data key (root, images_dir, masks_dir, classes, layout, shapes_options, ...) and ignores
# the rest. Plugins register through the ``mlcycle.segmentation_sources`` entry-point group.
SEGMENTATION_SOURCES: Registry[Callable[..., Listing]] = Registry(
    "segmentation data source", "data.source", "mlcycle.segmentation_sources", ["mlcycle.data"]
)
register_segmentation_source = SEGMENTATION_SOURCES.register


@dataclass(frozen=True)
class MaskSample:
    """An image and its mask; ``split`` is set when the layout fixes it."""

    image: Path
    mask: Path
    split: str | None = None

    @property
    def path(self) -> Path:
        return self.image


def mask_array(data: bytes) -> np.ndarray:
    """The mask's values as stored (a palette PNG's indices, not its colours); :class:`BadSample`
    says why a file is no mask."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            if img.mode not in INDEX_MODES:
                raise BadSample(
                    f"mask is {img.mode}; a mask holds class indices (a PNG in mode L or P), not colours"
                )
            return np.asarray(img)
    except (OSError, ValueError, SyntaxError) as exc:
        raise BadSample(f"mask cannot be read: {' '.join(str(exc).split())}") from exc


def values_problem(values: list[int], num_classes: int, ignore_index: int) -> str | None:
    """Why a mask holding ``values`` cannot be used with ``num_classes`` classes; None: it can."""
    bad = [v for v in values if v >= num_classes and v != ignore_index]
    if bad:
        return (
            f"mask holds class index {max(bad)}, but there are {num_classes} classes "
            f"(0..{num_classes - 1}; {ignore_index} is ignored)"
        )
    if values and min(values) < 0:
        return "mask holds a negative class index"
    return None


def decode_mask(data: bytes, num_classes: int, ignore_index: int) -> np.ndarray:
    """Class indices as an HxW uint8 array; :class:`BadSample` says why a mask is unusable."""
    mask = mask_array(data)
    problem = values_problem(np.unique(mask).tolist(), num_classes, ignore_index)
    if problem:
        raise BadSample(problem)
    return mask.astype(np.uint8)


@register_facts("mask")
def mask_facts(data: bytes, argument: str) -> Facts:
    """The class values a mask holds and its size, or why it is no mask."""
    try:
        mask = mask_array(data)
    except BadSample as exc:
        return {"error": str(exc)}
    if mask.dtype.kind == "u" and mask.dtype.itemsize <= 2:  # counting beats sorting
        values = np.flatnonzero(np.bincount(mask.ravel())).tolist()
    else:
        values = np.unique(mask).tolist()
    return {"width": mask.shape[1], "height": mask.shape[0], "values": values}


def pair_needs(sample: MaskSample, channels: int) -> list[tuple[Path, str]]:
    return [(sample.image, image_kind(channels)), (sample.mask, "mask")]


def check_pair(
    sample: MaskSample, facts: list[Facts], class_names: list[str], ignore_index: int
) -> Checked:
    """A readable image with a usable mask of its size; the classes are those the mask holds."""
    image, mask = facts
    if "unread" in image:
        raise BadSample(f"image cannot be read: {image['unread']}")
    if "unread" in mask:
        raise BadSample(f"mask cannot be read: {mask['unread']}")
    if "error" in image:
        raise BadSample(f"image cannot be read: {image['error']}")
    if "error" in mask:
        raise BadSample(mask["error"])
    problem = values_problem(mask["values"], len(class_names), ignore_index)
    if problem:
        raise BadSample(problem)
    if (mask["height"], mask["width"]) != (image["height"], image["width"]):
        raise BadSample(
            f"mask '{sample.mask.name}' is {mask['width']}x{mask['height']} (WxH) but its image "
            f"is {image['width']}x{image['height']}"
        )
    files = [
        (str(sample.image), image["sha256"], image["bytes"], "image"),
        (str(sample.mask), mask["sha256"], mask["bytes"], f"mask of {sample.image.name}"),
    ]
    classes = {class_names[c] for c in mask["values"] if c != ignore_index}
    return Checked(sample, files, classes)


def _read(path: Path, what: str) -> bytes:
    try:
        return read_bytes(path)
    except UnreadableImage as exc:
        raise BadSample(f"{what} cannot be read: {exc}") from exc


def load_pair(
    sample: MaskSample,
    channels: int,
    num_classes: int,
    ignore_index: int,
    size: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """The resized image (HxWxC) and mask (HxW, nearest-neighbour) of one pair."""
    image_bytes, mask_bytes = _read(sample.image, "image"), _read(sample.mask, "mask")
    try:
        image = decode_image(image_bytes, channels)
    except UnreadableImage as exc:
        raise BadSample(f"image cannot be read: {exc}") from exc
    mask = decode_mask(mask_bytes, num_classes, ignore_index)
    if mask.shape != image.shape[:2]:
        raise BadSample(f"mask '{sample.mask.name}' no longer has its image's size")
    both = resizer(*size)(image=image, mask=mask)
    return both["image"], both["mask"]


class MaskDataset(IndexDataset):
    """Items are ``(image CxHxW float, mask HxW int64, sample index)``."""

    def transform(
        self, item: tuple[np.ndarray, np.ndarray], position: int
    ) -> tuple[torch.Tensor, torch.Tensor, int]:
        out = self.pipeline(image=item[0], mask=item[1])
        return out["image"], torch.as_tensor(out["mask"]).long(), position


class SegmentationData(ImageDataModule):
    """Images with per-pixel class masks.

    Args:
        source: ``shapes`` (built-in shapes on textured backgrounds, written under ``root``
            once), ``masks`` (``root/images`` + ``root/masks``, matched by file stem; split
            folders ``images/<split>/`` + ``masks/<split>/`` or ``<split>/images/`` +
            ``<split>/masks/`` give the splits), ``voc`` (a Pascal VOC root: JPEGImages,
            SegmentationClass, ImageSets/Segmentation lists) or a source a plugin registered.
        root: the data folder (for ``shapes``: where it is written, ``data/shapes_seg``).
        images_dir: the images folder below ``root`` (``masks``).
        masks_dir: the masks folder below ``root`` (``masks``).
        classes: class names in index order; default ``root/classes.txt`` (VOC: its 21 names).
        ignore_index: mask value that is ignored by the loss and the metrics (VOC: 255).
        shapes_options: arguments of the built-in generator (``count``, ``size``, ``seed``, ...).
        image_size: images are resized to this (bilinear; masks nearest-neighbour); ``None``:
            the pretrained weights' size, else 64.
        batch_size: images per batch.
    """

    dataset_type = MaskDataset
    data_kind = "segmentation"
    what = "image/mask pairs"
    coverage = "pixel"
    split_column = "mask"
    resize = "stretch to image_size (albumentations Resize: image bilinear, mask nearest)"
    default_image_size = 64

    def __init__(
        self,
        source: str = "shapes",
        root: str | None = None,
        images_dir: str = "images",
        masks_dir: str = "masks",
        classes: list[str] | None = None,
        ignore_index: int = 255,
        shapes_options: dict[str, Any] | None = None,
        image_size: int | list[int] | None = None,
        batch_size: int = 16,
        **kwargs: Any,
    ) -> None:
        super().__init__(image_size=image_size, batch_size=batch_size, **kwargs)
        if not 0 <= ignore_index <= 255:
            raise UserError(f"data.ignore_index={ignore_index} must be in 0..255")

    @property
    def ignore_index(self) -> int:
        return self.hparams.ignore_index

    def list_samples(self) -> Listing:
        return SEGMENTATION_SOURCES.get(self.hparams.source)(**self.hparams)

    def decoder(self, channels: int, class_names: list[str] | None) -> Decoder:
        ignore = self.ignore_index
        return Decoder(
            needs=partial(pair_needs, channels=channels),
            check=partial(check_pair, class_names=class_names, ignore_index=ignore),
            load=partial(
                load_pair,
                channels=channels,
                num_classes=len(class_names),
                ignore_index=ignore,
                size=self.image_size,
            ),
        )

    def check_classes(self, class_names: list[str], where: str) -> None:
        if len(class_names) < 2:
            raise UserError(
                "segmentation needs at least two classes (usually background and one more); "
                f"got {class_names}"
            )

    def item_bytes(self, channels: int) -> int:
        return super().item_bytes(channels + 1)  # the mask is one more plane

    def raw_pair(self, position: int) -> tuple[np.ndarray, np.ndarray]:
        """The resized uint8 image (HxWxC) and mask (HxW) of sample ``position``."""
        return self.prepared(position)

    def raw_image(self, position: int) -> np.ndarray:
        return self.raw_pair(position)[0]

    def split_value(self, sample: MaskSample) -> str:
        return str(sample.mask)

    def describe(self) -> dict[str, Any]:
        return {
            "task": "segmentation",
            **super().describe(),
            "ignore_index": self.ignore_index,
            "mask_format": "PNG of class indices (mode L or P), same size as the image",
        }
