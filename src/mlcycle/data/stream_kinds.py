"""The seam between streams (``mlcycle optimize``, ``data.source: stream``) and the kinds of data.

Each kind of data registers a :class:`StreamKind` in :data:`STREAM_KINDS` under its data
module's ``data_kind`` (``classification``, ``tabular``...), through the entry-point group
``mlcycle.stream_kinds`` (mlcycle's own kinds in its ``pyproject.toml``, a plugin's in the
plugin's). A kind says how its data module is written into litdata's chunks and which data
module class reads the chunks back. ``optimize`` writes through it and records the kind and
the reader in ``stream.json``; :func:`use_stream_reader` turns a config's ``data.source:
stream`` into that reader class before anything is instantiated, so the run's ``config.yaml``
names the reader and every later stage loads it. No stage names a kind.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from mlcycle.core.errors import UserError
from mlcycle.core.registry import Registry
from mlcycle.data.stream_store import Store, split_options

STREAM = "stream"
FORMAT = "mlcycle-stream"
# the data keys that name a stream's place: images keep theirs in root, tables in path
PLACE_KEYS = ("root", "path")


@dataclass(frozen=True)
class StreamKind:
    """How one kind of data is streamed.

    Args:
        write: ``write(dm, store, workers, chunk_bytes) -> record``: writes the data module's
            splits (the test split apart) and records to ``store``; the record becomes
            ``stream.json`` (written last, by the writer).
        reader: the class path of the data module that trains from the stream.
        unit: what a split's count counts (``images``, ``rows``), for messages.
        place: the data key that names the stream for the reader (``root``, ``path``).
    """

    write: Callable[..., dict[str, Any]]
    reader: str
    unit: str = "items"
    place: str = "root"


STREAM_KINDS: Registry[StreamKind] = Registry(
    "kind of data written into a stream", "data_kind", "mlcycle.stream_kinds"
)


def class_path(obj: Any) -> str:
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__name__}"


def stream_kind_of(dm: Any) -> tuple[str, StreamKind]:
    """The kind ``dm`` declares (``data_kind``) and how it is streamed; one line when none."""
    kind = getattr(dm, "data_kind", None) or ""
    if not kind or kind not in STREAM_KINDS:
        why = f"its data_kind '{kind}' has no stream writer" if kind else "it has no data_kind"
        raise UserError(
            f"data.class_path '{class_path(dm)}' cannot be written into a stream ({why}); "
            f"optimize writes the kinds {', '.join(STREAM_KINDS.names()) or 'none'}"
        )
    found = STREAM_KINDS.get(kind)
    if class_path(dm) == found.reader:
        raise UserError(
            f"data.class_path '{found.reader}' already reads a stream; optimize a source"
        )
    return kind, found


def write(dm: Any, store: Store, workers: int = 1, chunk_bytes: str = "64MB") -> dict[str, Any]:
    """Write ``dm`` to ``store`` through its kind; ``stream.json`` (the writer's record with the
    kind and the reader's class path) is written last: it marks the stream complete."""
    kind, found = stream_kind_of(dm)
    store.check()
    if store.exists("stream.json"):
        raise UserError(f"'{store.url}' already holds a stream; choose a new --out")
    written = found.write(dm, store, workers, chunk_bytes)
    record = {"format": FORMAT, "version": 1, "kind": kind, "reader": found.reader, **written}
    store.write_text("stream.json", json.dumps(record, indent=2) + "\n")
    return record


def write_split(
    store: Store, split: str, fn: Callable[[Any], Any], inputs: list, workers: int, chunk: str
) -> None:
    """One split's items (``fn`` of each input) as litdata chunks in ``store``'s ``split``
    folder, in the order given."""
    import sys

    import litdata

    with private_cache():
        litdata.optimize(
            fn=fn,
            inputs=inputs,
            output_dir=store.join(split),
            chunk_bytes=chunk,
            num_workers=max(1, min(workers, len(inputs))),
            storage_options=store.storage,
            keep_data_ordered=True,
            verbose=False,
            # fork, this process's own default: spawn would import everything again per worker
            start_method="fork" if sys.platform == "linux" else None,
        )


@contextlib.contextmanager
def private_cache() -> Iterator[None]:
    """litdata's writer caches in ``$TMPDIR/chunks`` and ``$TMPDIR/data``, shared by every
    process on the machine, and empties them when it ends: a second write running at the same
    time lost its index before uploading it. Each write gets folders of its own instead (inside
    ``DATA_OPTIMIZER_CACHE_FOLDER`` when the user set it to a bigger disk)."""
    import tempfile

    names = ("DATA_OPTIMIZER_CACHE_FOLDER", "DATA_OPTIMIZER_DATA_CACHE_FOLDER")
    before = {name: os.environ.get(name) for name in names}
    parent = before[names[0]]
    if parent:
        os.makedirs(parent, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mlcycle-stream-", dir=parent or None) as tmp:
        for name, sub in zip(names, ("chunks", "data"), strict=True):
            os.environ[name] = os.path.join(tmp, sub)
        try:
            yield
        finally:
            for name, value in before.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def copy_records(dm: Any, store: Store, names: tuple[str, ...]) -> None:
    """The records a run of ``dm`` writes (``write_records``), those named, beside the chunks."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        dm.write_records(Path(tmp))
        for name in names:
            if (Path(tmp) / name).is_file():
                store.write_text(name, (Path(tmp) / name).read_text())


def read_record(place: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``stream.json`` of the stream at ``place`` (a local folder or ``s3://...``)."""
    storage, _ = split_options(options)
    store = Store(place, storage)
    store.check()
    return json.loads(store.read_text("stream.json"))


def reader_of(record: dict[str, Any]) -> str:
    """The class path that reads a stream (streams of image classification written before
    kinds were recorded name no reader)."""
    return record.get("reader") or STREAM_KINDS.get(record.get("kind", "classification")).reader


def stream_place(init_args: Any) -> str:
    """Where a ``data.source: stream`` config's stream is: ``data.root`` or ``data.path``."""
    for key in PLACE_KEYS:
        value = init_args.get(key) if init_args is not None else None
        if value:
            return str(value)
    raise UserError(
        "data.source is 'stream' but neither data.root nor data.path is set; pass the folder "
        "or s3://bucket/prefix that `mlcycle optimize --out` wrote"
    )


def use_stream_reader(config: Any) -> None:
    """``data.source: stream``: the parsed config's ``data.class_path`` becomes the reader
    ``stream.json`` names, whatever class the config named (its arguments kept)."""
    data = config.get("data") if config is not None else None
    init_args = getattr(data, "init_args", None) if data is not None else None
    if init_args is None or init_args.get("source") != STREAM:
        return
    record = read_record(stream_place(init_args), init_args.get("source_options"))
    data.class_path = reader_of(record)
