"""Training from a stream written by ``mlcycle optimize`` (litdata's chunks, local or on S3).

:class:`StreamImageData` is the image classification data module with its images in chunks
instead of files. Its index comes from the records written with the chunks (every file's path,
sha256, label and split), so the run records the same ``data_manifest.csv``, ``splits.csv``
and fingerprint as a run on the folder, without reading a file. The train split is streamed
(litdata's StreamingDataset and StreamingDataLoader: sharded across DDP ranks, nodes and
workers, resumable mid-epoch); the val split is read once into memory, so galleries, metrics
and exports find its images by position as on a folder. The test split's chunks are apart and
only ``split_dataloader("test")`` (evaluate.py) reads them.

    data:
      class_path: mlcycle.data.stream.StreamImageData
      init_args:
        root: s3://bucket/digits-stream        # or a local folder
        source_options: {endpoint_url: http://127.0.0.1:9000}   # an S3-compatible server
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader, Dataset

from mlcycle.core.errors import UserError
from mlcycle.data.classification import ImageClassificationData
from mlcycle.data.index import Index
from mlcycle.data.layout import announce
from mlcycle.data.sources import Sample
from mlcycle.data.splits import SPLITS
from mlcycle.data.stream_store import Store, StreamSource, chunk_args


class SplitReader:
    """``Index.load`` of a stream: a val or test image by its sample, from the split's chunks
    read whole on first use. Train images are only streamed."""

    def __init__(
        self, store: Store, options: dict[str, Any], channels: int, size: Any, paths: list[str]
    ) -> None:
        self.store, self.options, self.channels, self.size = store, options, channels, size
        self.position = {path: i for i, path in enumerate(paths)}
        self.items: dict[str, dict[int, Any]] = {}

    def preload(self, split: str) -> None:
        if split not in self.items:
            from mlcycle.data.stream_dataset import read_split

            chunks = chunk_args(self.store, self.options, split)
            self.items[split] = read_split(chunks, self.channels, self.size)

    def __call__(self, sample: Sample) -> Any:
        if sample.split == "train":
            raise UserError(
                "the train images of a stream are streamed, not read one by one; set "
                "data.mean and data.std or leave them to the stream's"
            )
        self.preload(sample.split)
        return self.items[sample.split][self.position[str(sample.path)]]


class ImageStream(StreamSource):
    """What the image streams share (classification, segmentation, detection): train streamed,
    val and test read whole, the normalization measured when the stream was written. A mixin:
    first base, before the folder's data module."""

    hparams: Any

    def _open(self, root: str | None, source_options: Any) -> None:
        self.hparams.source = "stream"  # a config's folder source is not read here
        self._open_stream(root, source_options, "root")

    def streamed_train(self, augment: bool) -> Dataset:
        """The train split's litdata StreamingDataset (a subclass says)."""
        raise NotImplementedError

    @property
    def normalization(self) -> tuple[list[float], list[float]]:
        """As a folder's, but measured when the stream was written (train is not re-read)."""
        hp = self.hparams
        if hp.mean is None and hp.std is None and "mean" not in self.weights_input:
            return list(self.record["mean"]), list(self.record["std"])
        return super().normalization  # type: ignore[misc]

    def dataset(self, split: str, augment: bool = False) -> Dataset:
        """Train: litdata's StreamingDataset; val and test: read whole, as a folder's."""
        if split != "train":
            if split in SPLITS:
                self.index.load.preload(split)
            return super().dataset(split, augment)  # type: ignore[misc]
        return self.streamed_train(augment)

    def _loader(self, split: str, shuffle: bool, augment: bool) -> DataLoader:
        if split != "train":
            return super()._loader(split, shuffle, augment)  # type: ignore[misc]
        from mlcycle.data.stream_dataset import stream_loader

        dataset, size = self.dataset("train", augment=augment), self.hparams.batch_size
        drop_last = shuffle and len(dataset) > size  # as a folder's: never every batch
        collate = type(self).collate_fn
        return stream_loader(dataset, size, self.num_workers, drop_last, collate)


class StreamImageData(ImageStream, ImageClassificationData):
    """Image classification from a stream (``mlcycle optimize``'s output).

    Args:
        source: ``stream``.
        root: the stream: a local folder or ``s3://bucket/prefix``.
        source_options: the S3 client's options (``endpoint_url``, ``region_name``...), and
            litdata's ``cache_dir`` and ``max_cache_size`` for the downloaded chunks.
    """

    def __init__(self, source: str = "stream", root: str | None = None, **kwargs: Any) -> None:
        super().__init__(source=source, root=root, **kwargs)
        self._open(root, kwargs.get("source_options"))

    def _build_index(self) -> Index:
        record, hp = self.record, self.hparams
        manifest = self.store.read_csv("data_manifest.csv")
        rows = self.store.read_csv("splits.csv")
        sample_files = [r for r in manifest if r["split"]]
        extra = [r for r in manifest if not r["split"]]
        samples = [Sample(Path(r["path"]), r["label"], r["split"]) for r in rows]
        channels = hp.channels or record["channels"]
        announce(f"stream {self.store.url}: {record['layout']}; splits as written")
        index = Index(
            samples=samples,
            splits=[r["split"] for r in rows],
            class_names=list(record["class_names"]),
            category_ids=list(range(len(record["class_names"]))),
            channels=channels,
            skipped=[(r["path"], r["reason"]) for r in self.store.read_csv("skipped_files.csv")],
            root=Path(record["root"]),
            files=[[(r["path"], r["sha256"], int(r["bytes"]), r["label"])] for r in sample_files],
            extra_files=[(r["path"], r["sha256"], int(r["bytes"]), r["label"]) for r in extra],
            load=SplitReader(
                self.store,
                self.stream_options,
                channels,
                self.image_size,
                [r["path"] for r in rows],
            ),
            layout=record["layout"],
        )
        index.positions = {s: [i for i, x in enumerate(index.splits) if x == s] for s in SPLITS}
        return index

    def streamed_train(self, augment: bool) -> Dataset:
        from mlcycle.data.stream_dataset import StreamedImages

        return StreamedImages(
            self.pipeline(augment),
            self.class_names,
            self.in_channels,
            self.image_size,
            **self.chunks("train", shuffle=augment, seed=self.hparams.split_seed),
        )
