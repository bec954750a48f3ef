"""litdata's StreamingDataset over a segmentation or detection stream's train chunks, and a
small split read whole. Imported only when such a stream is read (litdata is the ``stream``
extra). Each item is decoded from its bytes exactly as the folder's file is (same decoders,
same resize), then goes through the folder dataset's own ``transform``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from litdata import StreamingDataset

from mlcycle.core.errors import UserError
from mlcycle.data.boxes import BoxSample
from mlcycle.data.detection import Prepared, prepare
from mlcycle.data.images import UnreadableImage, decode_image
from mlcycle.data.index import resizer
from mlcycle.data.segmentation import decode_mask
from mlcycle.data.skipped import BadSample


def _unusable(item: dict[str, Any], exc: Exception) -> UserError:
    return UserError(f"streamed item {item['position']} ({item['sha256']}) is unusable: {exc}")


def decode_pair(
    item: dict[str, Any], channels: int, num_classes: int, ignore_index: int, size: tuple
) -> tuple[np.ndarray, np.ndarray]:
    """The resized image and mask of a streamed segmentation item (as ``load_pair``)."""
    try:
        image = decode_image(item["image"], channels)
        mask = decode_mask(item["mask"], num_classes, ignore_index)
    except (UnreadableImage, BadSample) as exc:
        raise _unusable(item, exc) from exc
    if mask.shape != image.shape[:2]:
        raise _unusable(item, ValueError("the mask is not its image's size"))
    both = resizer(*size)(image=image, mask=mask)
    return both["image"], both["mask"]


def decode_boxes(item: dict[str, Any], channels: int, size: tuple) -> Prepared:
    """The resized image and scaled boxes of a streamed detection item (as ``load_sample``)."""
    try:
        image = decode_image(item["image"], channels)
        sample = BoxSample(
            path=Path(item["sha256"]),
            image_id=int(item["position"]),
            boxes=np.array(item["boxes"], np.float64).reshape(-1, 4),
            labels=np.array(item["labels"], np.int64).reshape(-1),
            crowd=np.array(item["crowd"], bool).reshape(-1),
        )
        return prepare(sample, image, size)[1]
    except (UnreadableImage, BadSample) as exc:
        raise _unusable(item, exc) from exc


class StreamedItems(StreamingDataset):
    """Items ``transform(decode(item), position)``: the folder dataset's items, streamed;
    ``chunks``: litdata's StreamingDataset arguments (``StreamSource.chunks``)."""

    def __init__(
        self,
        decode: Callable[[dict[str, Any]], Any],
        transform: Callable[[Any, int], Any],
        **chunks: Any,
    ) -> None:
        super().__init__(**chunks)
        # not self.transform: StreamingDataset applies that attribute to every raw item
        self.decode, self.finish = decode, transform

    def __getitem__(self, index: Any) -> Any:
        item = super().__getitem__(index)
        return self.finish(self.decode(item), int(item["position"]))


def read_items(chunks: dict[str, Any], decode: Callable[[dict[str, Any]], Any]) -> dict[int, Any]:
    """Every decoded item of a split's chunks, by its index position."""
    dataset = StreamingDataset(**chunks)
    return {int(item["position"]): decode(item) for item in dataset}
