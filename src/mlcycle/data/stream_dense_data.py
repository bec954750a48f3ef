"""Segmentation and detection trained from a stream written by ``mlcycle optimize``.

:class:`StreamSegmentationData` and :class:`StreamDetectionData` are the folder's data modules
with their pairs and boxes in litdata's chunks (local or on S3), as
:class:`~mlcycle.data.stream.StreamImageData` is for classification. The index is rebuilt from
the records written with the chunks (``samples.json``: each sample, its files' sha256 and its
split), so the run records the folder's manifest, splits and fingerprint without reading a file.
The train split is streamed (StreamingDataset/StreamingDataLoader: sharded across DDP ranks,
resumable mid-epoch); val is read once into memory, so galleries, metrics and exports find its
items by position; the sealed test split is read only by ``split_dataloader("test")``.

    data:
      class_path: mlcycle.data.stream_dense_data.StreamSegmentationData
      init_args:
        root: s3://bucket/shapes-stream        # or a local folder
        source_options: {endpoint_url: http://127.0.0.1:9000}
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from mlcycle.core.errors import UserError
from mlcycle.data.detection import DetectionData
from mlcycle.data.index import Index
from mlcycle.data.layout import announce
from mlcycle.data.segmentation import SegmentationData
from mlcycle.data.splits import SPLITS
from mlcycle.data.stream import ImageStream
from mlcycle.data.stream_dense import SAMPLES, sample_from_json
from mlcycle.data.stream_store import Store, chunk_args


class DenseReader:
    """``Index.load`` of a stream: a val or test item by its sample, from the split's chunks
    read whole on first use. A train item asked for by itself (the segmentation chance level
    counts the pixels of up to 256 training masks) is read from its chunk by litdata's random
    access; training streams them."""

    def __init__(
        self, store: Store, options: dict[str, Any], decode: Callable, rows: list[dict]
    ) -> None:
        self.store, self.options, self.decode = store, options, decode
        self.position = {r["path"]: i for i, r in enumerate(rows)}
        self.splits = [r["split"] for r in rows]
        self.place = [r["item"] for r in rows]  # the item's place in its split's chunks
        self.items: dict[str, dict[int, Any]] = {}
        self.train: Any = None

    def preload(self, split: str) -> None:
        if split not in self.items:
            from mlcycle.data.stream_dense_dataset import read_items

            chunks = chunk_args(self.store, self.options, split)
            self.items[split] = read_items(chunks, self.decode)

    def train_item(self, position: int) -> Any:
        if self.train is None:
            from litdata import StreamingDataset

            self.train = StreamingDataset(**chunk_args(self.store, self.options, "train"))
        item = self.train[self.place[position]]
        if int(item["position"]) != position:
            raise UserError(
                f"the train chunks of '{self.store.url}' are not in the order samples.json "
                "records; write the stream again"
            )
        return self.decode(item)

    def __call__(self, sample: Any) -> Any:
        position = self.position[str(sample.path)]
        split = self.splits[position]
        if split == "train":
            return self.train_item(position)
        self.preload(split)
        return self.items[split][position]


class DenseStream(ImageStream):
    """What the segmentation and detection streams share; first base, before the data module.

    Args:
        source: ``stream``.
        root: the stream: a local folder or ``s3://bucket/prefix``.
        source_options: the S3 client's options (``endpoint_url``, ``region_name``...), and
            litdata's ``cache_dir`` and ``max_cache_size`` for the downloaded chunks.
    """

    def __init__(
        self,
        source: str = "stream",
        root: str | None = None,
        source_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(source=source, root=root, **kwargs)  # type: ignore[call-arg]
        self._open(root, source_options)

    def stream_decoder(self) -> Callable[[dict[str, Any]], Any]:
        """How one chunk item becomes the folder's decoded item (a subclass says)."""
        raise NotImplementedError

    @property
    def stream_channels(self) -> int:
        return self.hparams.channels or self.record["channels"]

    def _check_record(self, record: dict[str, Any]) -> None:
        """The stream must hold this kind of data."""
        kind = record.get("kind", "classification")
        if kind != self.data_kind:
            raise UserError(
                f"the stream '{self.store.url}' holds {kind} data, not {self.data_kind}; "
                "train it with its own kind's config"
            )

    def _build_index(self) -> Index:
        record = self.record
        rows = json.loads(self.store.read_text(SAMPLES))["samples"]
        manifest = self.store.read_csv("data_manifest.csv")
        skipped = self.store.read_csv("skipped_files.csv")
        announce(f"stream {self.store.url}: {record['layout']}; splits as written")
        samples = [sample_from_json(r["sample"]) for r in rows]
        splits = [r["split"] for r in rows]
        paths = [
            {"path": str(s.path), "split": r["split"], "item": r["item"]}
            for s, r in zip(samples, rows, strict=True)
        ]
        reader = DenseReader(self.store, self.stream_options, self.stream_decoder(), paths)
        index = Index(
            samples=samples,
            splits=splits,
            class_names=list(record["class_names"]),
            category_ids=list(record["category_ids"]),
            channels=self.stream_channels,
            skipped=[(r["path"], r["reason"]) for r in skipped],
            root=Path(record["root"]),
            files=[[(p, sha, int(n), what) for p, sha, n, what in r["files"]] for r in rows],
            extra_files=[
                (r["path"], r["sha256"], int(r["bytes"]), r["label"])
                for r in manifest
                if not r["split"]
            ],
            load=reader,
            layout=record["layout"],
        )
        index.positions = {s: [i for i, x in enumerate(index.splits) if x == s] for s in SPLITS}
        return index

    def streamed_train(self, augment: bool) -> Dataset:
        from mlcycle.data.stream_dense_dataset import StreamedItems

        transform = self.dataset_type(None, [], self.pipeline(augment)).transform
        return StreamedItems(
            self.stream_decoder(),
            transform,
            **self.chunks("train", shuffle=augment, seed=self.hparams.split_seed),
        )


class StreamSegmentationData(DenseStream, SegmentationData):
    """Segmentation from a stream (``mlcycle optimize`` of a segmentation config); its
    arguments are :class:`DenseStream`'s."""

    @property
    def ignore_index(self) -> int:
        """The value the masks were written with."""
        return int(self.record.get("ignore_index", self.hparams.ignore_index))

    def stream_decoder(self) -> Callable[[dict[str, Any]], Any]:
        from mlcycle.data.stream_dense_dataset import decode_pair

        return partial(
            decode_pair,
            channels=self.stream_channels,
            num_classes=len(self.record["class_names"]),
            ignore_index=self.ignore_index,
            size=self.image_size,
        )


class StreamDetectionData(DenseStream, DetectionData):
    """Detection from a stream (``mlcycle optimize`` of a detection config); its arguments are
    :class:`DenseStream`'s."""

    def stream_decoder(self) -> Callable[[dict[str, Any]], Any]:
        from mlcycle.data.stream_dense_dataset import decode_boxes

        return partial(decode_boxes, channels=self.stream_channels, size=self.image_size)
