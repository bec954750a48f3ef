"""``mlcycle materialize``: copy a config's data into a new folder, one subfolder per class, with
a manifest that keeps each file's label, split and origin. ``--strip-exif`` removes EXIF (GPS
included), XMP, IPTC and text metadata from the copies; the originals are only read.

    mlcycle materialize --config configs/image_folder.yaml --data.root PATH \\
        --out data/clean --strip-exif

The data module's kind (``data_kind``) does the copying (``mlcycle.quality.kinds``); only
classification data is copied.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlcycle.commands.guard import main_guard
from mlcycle.commands.parser import parse_data
from mlcycle.quality.kinds import quality_of


def parser() -> Any:
    from mlcycle.quality.config import data_parser

    p = data_parser(
        "mlcycle materialize",
        "Copy a config's classification data (quarantined and unreadable files left out) into "
        "OUT/<class>/ with OUT/manifest.csv. Reads the config as train.py does.",
    )
    p.add_argument("--out", type=str, required=True, help="a new or empty folder outside the data")
    p.add_argument(
        "--strip-exif",
        action="store_true",
        help="remove EXIF (GPS included), XMP, IPTC and text metadata from the copies",
    )
    return p


@main_guard
def main(argv: list[str] | None = None) -> dict[str, Any]:
    p, args = parse_data(parser, argv, "materialize")
    from mlcycle.quality.config import instantiate_data

    dm = instantiate_data(p, args)
    out = Path(args.out)
    record = quality_of(dm).materialize(dm, out, args.strip_exif)
    note = (
        f", metadata removed from {record['files_with_metadata_removed']}"
        if args.strip_exif
        else ""
    )
    print(f"copied {record['files']} files to {out}{note}; manifest: {out / 'manifest.csv'}")
    print(f"train on the copy: {record['train_with']}")
    return record
