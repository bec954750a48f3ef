"""Built-in segmentation and detection data: shapes on textured backgrounds, with exact labels.

Each shape is drawn as a binary mask (no anti-aliasing) and the image is painted through that
same mask, so the class mask and the boxes agree with the image pixel for pixel. Everything is
written once, through a temporary folder and an atomic rename, like the digits; the same seed
always writes the same files.

* segmentation: ``root/images/NNNN.png``, ``root/masks/NNNN.png`` (class indices, mode L) and
  ``root/classes.txt`` (``background``, then one name per shape).
* detection: ``root/images/NNNN.png`` and ``root/annotations.json`` in COCO format
  (``file_name`` relative to ``root``, category ids from 1, boxes ``[x, y, width, height]``);
  some images hold no object (negatives).

Both are registered as the ``shapes`` source of their task (``data.shapes_options`` are the
generator's arguments).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from mlcycle.data.coco import coco_listing
from mlcycle.data.coco_file import read_coco
from mlcycle.data.detection import register_detection_source
from mlcycle.data.generated import write_once
from mlcycle.data.index import Listing
from mlcycle.data.masks import read_classes, read_pairs
from mlcycle.data.segmentation import register_segmentation_source

SEGMENTATION_ROOT = "data/shapes_seg"
DETECTION_ROOT = "data/shapes_det"
SHAPES = ("circle", "square", "triangle")


def textured_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """An RGB float image: a colour gradient, a faint sinusoidal texture and pixel noise."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    base = rng.uniform(40, 215, size=3)
    tilt = rng.uniform(-40, 40, size=(2, 3))
    angle, freq = rng.uniform(0, np.pi), rng.uniform(3, 10)
    wave = np.sin(2 * np.pi * freq * (np.cos(angle) * xx + np.sin(angle) * yy))
    image = base + xx[..., None] * tilt[0] + yy[..., None] * tilt[1]
    image = image + rng.uniform(8, 22) * wave[..., None] + rng.normal(0, 6, (size, size, 3))
    return image


def shape_mask(kind: str, cx: float, cy: float, r: float, angle: float, size: int) -> np.ndarray:
    """A boolean mask of one filled shape of radius ``r`` centred at ``(cx, cy)``."""
    canvas = Image.new("1", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    if kind == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=1)
    else:
        corners = 4 if kind == "square" else 3
        turns = angle + np.arange(corners) * 2 * np.pi / corners
        draw.polygon([(cx + r * np.cos(t), cy + r * np.sin(t)) for t in turns], fill=1)
    return np.asarray(canvas, dtype=bool)


def paint(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> None:
    """Fill ``mask`` with a colour far from the background under it, plus light noise."""
    under = image[mask].mean(axis=0)
    for _ in range(20):
        colour = rng.uniform(0, 255, size=3)
        if np.abs(colour - under).sum() > 180:
            break
    image[mask] = colour + rng.normal(0, 5, (int(mask.sum()), 3))


def _to_png(image: np.ndarray, path: Path) -> None:
    Image.fromarray(np.clip(np.rint(image), 0, 255).astype(np.uint8), mode="RGB").save(path)


def _box(mask: np.ndarray) -> list[int]:
    """The exact pixel box ``[x, y, width, height]`` of a mask (pixels cover [x, x + 1))."""
    ys, xs = np.nonzero(mask)
    return [
        int(xs.min()),
        int(ys.min()),
        int(xs.max() - xs.min() + 1),
        int(ys.max() - ys.min() + 1),
    ]


def write_shape_masks(
    root: str | Path,
    count: int = 1000,
    size: int = 64,
    max_shapes: int = 3,
    radius: tuple[float, float] | None = None,
    seed: int = 0,
) -> Path:
    """Write the segmentation data set once (``count`` images of ``size`` x ``size``); shape
    radii default to 6..14 pixels at size 64, in proportion at other sizes."""
    radius = radius or (size * 6 / 64, size * 14 / 64)

    def write(tmp: Path) -> None:
        (tmp / "images").mkdir()
        (tmp / "masks").mkdir()
        (tmp / "classes.txt").write_text("\n".join(["background", *SHAPES]) + "\n")
        rng = np.random.default_rng(seed)
        for i in range(count):
            image = textured_background(rng, size)
            labels = np.zeros((size, size), np.uint8)
            for _ in range(int(rng.integers(1, max_shapes + 1))):
                kind = int(rng.integers(len(SHAPES)))
                r = rng.uniform(*radius)
                cx, cy = rng.uniform(r * 0.6, size - r * 0.6, size=2)
                mask = shape_mask(SHAPES[kind], cx, cy, r, rng.uniform(0, 2 * np.pi), size)
                paint(image, mask, rng)
                labels[mask] = kind + 1  # a later shape covers an earlier one, in both
            _to_png(image, tmp / "images" / f"{i:04d}.png")
            Image.fromarray(labels, mode="L").save(tmp / "masks" / f"{i:04d}.png")

    note = f"mlcycle shapes, segmentation: {count} images {size}x{size}, seed {seed}"
    return write_once(Path(root), write, note)


def _overlaps(box: list[int], others: list[list[int]], margin: int = 2) -> bool:
    x, y, w, h = box
    return any(
        x < ox + ow + margin
        and ox < x + w + margin
        and y < oy + oh + margin
        and oy < y + h + margin
        for ox, oy, ow, oh in others
    )


def write_shape_boxes(
    root: str | Path,
    count: int = 1200,
    size: int = 128,
    max_objects: int = 4,
    radius: tuple[float, float] | None = None,
    negatives: float = 0.08,
    seed: int = 0,
) -> Path:
    """Write the detection data set once: ``count`` images, a share of them without objects;
    object radii default to 7..20 pixels at size 128, in proportion at other sizes."""
    radius = radius or (size * 7 / 128, size * 20 / 128)

    def write(tmp: Path) -> None:
        (tmp / "images").mkdir()
        rng = np.random.default_rng(seed)
        images, annotations = [], []
        for i in range(count):
            image = textured_background(rng, size)
            wanted = 0 if rng.random() < negatives else int(rng.integers(1, max_objects + 1))
            boxes: list[list[int]] = []
            for _ in range(wanted * 10):  # a few tries per object to find free space
                if len(boxes) == wanted:
                    break
                kind = int(rng.integers(len(SHAPES)))
                r = rng.uniform(*radius)
                cx, cy = rng.uniform(r, size - r, size=2)
                mask = shape_mask(SHAPES[kind], cx, cy, r, rng.uniform(0, 2 * np.pi), size)
                box = _box(mask)
                if _overlaps(box, boxes):
                    continue
                paint(image, mask, rng)
                boxes.append(box)
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": i + 1,
                        "category_id": kind + 1,
                        "bbox": box,
                        "area": int(mask.sum()),
                        "iscrowd": 0,
                    }
                )
            name = f"{i:04d}.png"
            _to_png(image, tmp / "images" / name)
            images.append(
                {"id": i + 1, "file_name": f"images/{name}", "width": size, "height": size}
            )
        coco = {
            "info": {"description": f"mlcycle shapes, detection, seed {seed}"},
            "images": images,
            "annotations": annotations,
            "categories": [{"id": k + 1, "name": n} for k, n in enumerate(SHAPES)],
        }
        (tmp / "annotations.json").write_text(json.dumps(coco))

    note = f"mlcycle shapes, detection: {count} images {size}x{size}, seed {seed}"
    return write_once(Path(root), write, note)


@register_segmentation_source("shapes")
def shapes_masks(
    root: str | None = None,
    shapes_options: dict[str, Any] | None = None,
    images_dir: str = "images",
    masks_dir: str = "masks",
    classes: list[str] | None = None,
    layout: str = "auto",
    **_: Any,
) -> Listing:
    """The segmentation shapes, written under ``root`` (default ``data/shapes_seg``) once."""
    base = write_shape_masks(Path(root or SEGMENTATION_ROOT).expanduser(), **(shapes_options or {}))
    listing = read_pairs(base, images_dir, masks_dir, layout)
    listing.class_names = read_classes(base, classes)
    return listing


@register_detection_source("shapes")
def shapes_boxes(
    root: str | None = None, shapes_options: dict[str, Any] | None = None, **_: Any
) -> Listing:
    """The detection shapes, written under ``root`` (default ``data/shapes_det``) once."""
    base = write_shape_boxes(Path(root or DETECTION_ROOT).expanduser(), **(shapes_options or {}))
    return coco_listing(read_coco(base / "annotations.json"), str(base / "annotations.json"))
