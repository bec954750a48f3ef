"""``mlcycle optimize``: write a config's data into litdata's chunks, to train from a stream
(``data.source: stream``, docs/distributed.md "Streamed data (litdata)").

    mlcycle optimize --config configs/image_folder.yaml --data.root PATH --out s3://bucket/name \\
        --storage_options '{"endpoint_url": "http://127.0.0.1:9000"}'

The data module's kind says how it is written and which data class reads it back
(:mod:`mlcycle.data.stream_kinds`). The splits are fixed as train.py would fix them, and each
split goes to its own folder of chunks: the sealed test split apart from train and val.
"""

from __future__ import annotations

from typing import Any

from mlcycle.commands.guard import main_guard
from mlcycle.commands.parser import parse_data


def parser() -> Any:
    from mlcycle.quality.config import data_parser

    p = data_parser(
        "mlcycle optimize",
        "Write a config's data into litdata's chunks (OUT/train, OUT/val and "
        "the sealed OUT/test) with its manifest, splits and fingerprint. Reads the config as "
        "train.py does.",
    )
    p.add_argument(
        "--out", type=str, required=True, help="a new local folder or s3://bucket/prefix"
    )
    p.add_argument(
        "--storage_options",
        type=dict[str, Any],
        default={},
        help="S3 client options (boto3's: endpoint_url, region_name...)",
    )
    p.add_argument("--workers", type=int, default=1, help="processes that write chunks")
    p.add_argument("--chunk_bytes", type=str, default="64MB", help="the size of one chunk")
    return p


@main_guard
def main(argv: list[str] | None = None) -> dict[str, Any]:
    p, args = parse_data(parser, argv, "optimize")
    from mlcycle.data.stream_store import Store

    store = Store(args.out, args.storage_options)
    store.check()  # an unreachable endpoint stops before any file is read
    from mlcycle.data.stream_kinds import stream_kind_of, write
    from mlcycle.quality.config import instantiate_data

    dm = instantiate_data(p, args)
    _, kind = stream_kind_of(dm)  # a kind with no writer: one line before anything is read
    record = write(dm, store, args.workers, args.chunk_bytes)
    counts = ", ".join(f"{n} {s}" for s, n in record["split_counts"].items())
    print(f"wrote {counts} {kind.unit} to {args.out} (test apart in {store.join('test')})")
    print(f"fingerprint {record['fingerprint']}")
    print(f"train on it: --data.source stream --data.{kind.place} {args.out}")
    return record
