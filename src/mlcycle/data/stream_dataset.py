"""litdata's StreamingDataset over a stream's train chunks, and reading a small split whole.

Imported only when a stream is read (litdata is the optional ``stream`` extra). The
StreamingDataset shards the chunks across DDP ranks, nodes and loader workers by itself, and
its StreamingDataLoader's state (how far the epoch went) is saved in Lightning's checkpoint and
restored on resume (Lightning keeps any loader with ``state_dict``/``load_state_dict``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import albumentations as A
import numpy as np
from litdata import StreamingDataLoader, StreamingDataset

from mlcycle.core.errors import UserError
from mlcycle.data.images import UnreadableImage, decode_image
from mlcycle.data.index import resizer


def decoded(item: dict[str, Any], channels: int, size: tuple[int, int]) -> np.ndarray:
    """The resized uint8 image of a streamed item: the folder's decoding, on the same bytes."""
    try:
        image = decode_image(item["image"], channels)
    except UnreadableImage as exc:
        raise UserError(
            f"streamed image {item['position']} ({item['sha256']}) cannot be decoded: {exc}"
        ) from exc
    return resizer(*size)(image=image)["image"]


class StreamedImages(StreamingDataset):
    """Items ``(image tensor, class index, index position)``, as a folder's ``ImageDataset``;
    ``chunks``: litdata's StreamingDataset arguments (``StreamSource.chunks``)."""

    def __init__(
        self,
        pipeline: A.Compose,
        class_names: list[str],
        channels: int,
        size: tuple[int, int],
        **chunks: Any,
    ) -> None:
        super().__init__(**chunks)
        self.pipeline, self.channels, self.size = pipeline, channels, size
        self.lookup = {name: i for i, name in enumerate(class_names)}

    def __getitem__(self, index: Any) -> tuple[Any, int, int]:
        item = super().__getitem__(index)
        image = decoded(item, self.channels, self.size)
        return self.pipeline(image=image)["image"], self.lookup[item["label"]], item["position"]


def stream_loader(
    dataset: StreamingDataset,
    batch_size: int,
    workers: int,
    drop_last: bool,
    collate: Callable[[list[Any]], Any] | None = None,
) -> StreamingDataLoader:
    """litdata's loader of any stream's train split (``collate`` None: torch's default)."""
    return StreamingDataLoader(
        dataset, batch_size=batch_size, num_workers=workers, drop_last=drop_last, collate_fn=collate
    )


def read_split(
    chunks: dict[str, Any], channels: int, size: tuple[int, int]
) -> dict[int, np.ndarray]:
    """Every image of a split's chunks, resized, by its index position (val and test are read
    whole once: galleries and exports pick images by position)."""
    dataset = StreamingDataset(**chunks)
    return {item["position"]: decoded(item, channels, size) for item in dataset}
