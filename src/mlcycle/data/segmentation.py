"""The segmentation DataModule: images with per-pixel class masks.

A mask is a PNG of class indices (mode ``L`` or ``P``: for a palette PNG the index is the
class, not the colour), the same size as its image. The value ``ignore_index`` (255, VOC's
object border) marks pixels that count for nothing. Where the pairs come from is a source in
:data:`SEGMENTATION_SOURCES` (``masks``, ``voc``, ``shapes``), one file each.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from mlcycle.data.base import ImageDataModule
from mlcycle.data.images import UnreadableImage, decode_image, read_bytes
from mlcycle.data.index import Decoded, IndexDataset, Listing
from mlcycle.data.skipped import BadSample
from mlcycle.data.transforms import resize
from mlcycle.errors import UserError
from mlcycle.registry import Registry

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


def decode_mask(data: bytes, num_classes: int, ignore_index: int) -> np.ndarray:
    """Class indices as an HxW uint8 array; :class:`BadSample` says why a mask is unusable."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            if img.mode not in INDEX_MODES:
                raise BadSample(
                    f"mask is {img.mode}; a mask holds class indices (a PNG in mode L or P), not colours"
                )
            mask = np.asarray(img).astype(np.int64)
    except (OSError, ValueError, SyntaxError) as exc:
        raise BadSample(f"mask cannot be read: {' '.join(str(exc).split())}") from exc
    bad = (mask >= num_classes) & (mask != ignore_index)
    if bad.any():
        raise BadSample(
            f"mask holds class index {int(mask[bad].max())}, but there are {num_classes} classes "
            f"(0..{num_classes - 1}; {ignore_index} is ignored)"
        )
    if (mask < 0).any():
        raise BadSample("mask holds a negative class index")
    return mask.astype(np.uint8)


def _read(path: Path, what: str) -> bytes:
    try:
        return read_bytes(path)
    except UnreadableImage as exc:
        raise BadSample(f"{what} cannot be read: {exc}") from exc


def decode_pair(
    sample: MaskSample,
    channels: int,
    class_names: list[str],
    ignore_index: int,
    size: tuple[int, int],
) -> Decoded:
    """The resized image (HxWxC) and mask (HxW, nearest-neighbour) of one pair."""
    image_bytes, mask_bytes = _read(sample.image, "image"), _read(sample.mask, "mask")
    try:
        image = decode_image(image_bytes, channels)
    except UnreadableImage as exc:
        raise BadSample(f"image cannot be read: {exc}") from exc
    mask = decode_mask(mask_bytes, len(class_names), ignore_index)
    if mask.shape != image.shape[:2]:
        raise BadSample(
            f"mask '{sample.mask.name}' is {mask.shape[1]}x{mask.shape[0]} (WxH) but its image is "
            f"{image.shape[1]}x{image.shape[0]}"
        )
    present = np.flatnonzero(np.bincount(mask.ravel(), minlength=256)).tolist()
    both = resize(*size)(image=image, mask=mask)
    files = [
        (str(sample.image), hashlib.sha256(image_bytes).hexdigest(), len(image_bytes), "image"),
        (
            str(sample.mask),
            hashlib.sha256(mask_bytes).hexdigest(),
            len(mask_bytes),
            f"mask of {sample.image.name}",
        ),
    ]
    classes = {class_names[c] for c in present if c != ignore_index}
    return Decoded(sample, (both["image"], both["mask"]), files, classes)


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
        image_size: images are resized to this (bilinear; masks nearest-neighbour).
        batch_size: images per batch.
    """

    dataset_type = MaskDataset
    what = "image/mask pairs"
    coverage = "pixel"
    split_column = "mask"
    resize = "stretch to image_size (albumentations Resize: image bilinear, mask nearest)"

    def __init__(
        self,
        source: str = "shapes",
        root: str | None = None,
        images_dir: str = "images",
        masks_dir: str = "masks",
        classes: list[str] | None = None,
        ignore_index: int = 255,
        shapes_options: dict[str, Any] | None = None,
        image_size: int | list[int] = 64,
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

    def decoder(self, channels: int, class_names: list[str] | None) -> Callable[[Any], Decoded]:
        return partial(
            decode_pair,
            channels=channels,
            class_names=class_names,
            ignore_index=self.ignore_index,
            size=self.image_size,
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
