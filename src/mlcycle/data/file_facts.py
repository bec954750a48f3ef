"""What the index learns from one file's content: its sha256 and size, and what its kind of
file needs checked (an image's size and mode, a mask's class values), or why it cannot be used.

Facts depend on the content alone, so the index cache keeps them across runs (keyed by the
file's path, size and modification time). A fact kind is ``name`` or ``name/argument``:

* ``image/<channels>``: decoded as the dataset decodes it (``width``, ``height`` after EXIF
  rotation, ``mode``, ``bands``), or ``error``: why it cannot be decoded;
* ``mask``: class indices present (``values``), ``width``, ``height``, or ``error`` (registered by
  :mod:`mlcycle.data.segmentation`);
* ``file``: the hash and size only (label and annotation files).

A file that cannot be read at all gets ``{"unread": reason}``, which is never cached: a
permission or a link can change without the file's size or time changing. Facts are cached
under :func:`readers_version`: a change to how files are read (bump :data:`FACTS_VERSION`, or a
new PIL or torchvision) reads every file again once.
"""

from __future__ import annotations

import functools
import hashlib
import io
from collections.abc import Callable
from importlib import metadata
from typing import Any

from PIL import Image

from mlcycle.data.images import UnreadableImage, decode_image, read_bytes

FACTS_VERSION = 1  # bump when a reader's facts or reasons change (mlcycle.data.images too)
Facts = dict[str, Any]
FactReader = Callable[[bytes, str], Facts]  # (content, the kind's argument) -> facts

READERS: dict[str, FactReader] = {}


def register_facts(name: str) -> Callable[[FactReader], FactReader]:
    """Register ``fn(content, argument) -> facts`` as fact kind ``name``."""

    def add(fn: FactReader) -> FactReader:
        READERS[name] = fn
        return fn

    return add


@functools.cache
def readers_version() -> str:
    """What cached facts depend on besides the file: the readers and the decoding libraries."""
    versions = [f"facts {FACTS_VERSION}"]
    for package in ("pillow", "torchvision"):
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"no {package}")
    return ", ".join(versions)


def image_kind(channels: int) -> str:
    return f"image/{channels}"


@register_facts("image")
def image_facts(data: bytes, channels: str) -> Facts:
    try:
        image = decode_image(data, int(channels))
    except UnreadableImage as exc:
        return {"error": str(exc)}
    with Image.open(io.BytesIO(data)) as img:  # the header only: decoding it succeeded above
        mode = img.mode
    height, width = image.shape[:2]
    return {"width": width, "height": height, "mode": mode, "bands": Image.getmodebands(mode)}


@register_facts("file")
def plain_facts(data: bytes, argument: str) -> Facts:
    return {}


def read_facts(path: str, kind: str) -> Facts:
    """The facts of kind ``kind`` of the file at ``path``."""
    name, _, argument = kind.partition("/")
    reader = READERS.get(name)
    if reader is None:
        raise ValueError(f"unknown fact kind '{kind}'; registered: {', '.join(sorted(READERS))}")
    try:
        data = read_bytes(path)
    except UnreadableImage as exc:
        return {"unread": str(exc)}
    return {
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        **reader(data, argument),
    }


def read_job(job: tuple[str, str]) -> Facts:
    """:func:`read_facts` of one ``(path, kind)``, for a pool's ``map``."""
    return read_facts(*job)
