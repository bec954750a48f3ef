"""``mlcycle validate``: check every file (or row) of a config's data, write a report folder.
The data is only read; the config is read as ``train.py`` reads it.

    mlcycle validate --config configs/image_folder.yaml --data.root PATH
    mlcycle validate --config configs/segment_quickstart.yaml
    mlcycle validate --table data.csv --target y

The data module's kind (``data_kind``) chooses the checks (``mlcycle.quality.kinds``); a kind
may also be named on the command line without a config (a table: ``--table``).
"""

from __future__ import annotations

import sys
from typing import Any

from mlcycle.commands.guard import main_guard
from mlcycle.commands.parser import parse_data
from mlcycle.core.errors import UserError
from mlcycle.quality.kinds import add_kind_arguments, part_and_data


def parser() -> Any:
    from mlcycle.quality.config import data_parser
    from mlcycle.quality.findings import Thresholds

    p = data_parser(
        "mlcycle validate",
        "Find broken, duplicate, leaking, mislabeled and outlying images, and for segmentation "
        "and detection data empty masks, images without boxes, boxes outside the image and box "
        "outliers. Reads the config as train.py does (--config, --data.KEY=VALUE). A table (--table "
        "PATH --target COLUMN, or a TabularData config) gets the table checks (docs/tables.md).",
    )
    t = Thresholds()
    p.add_argument("--out", default="reports/data", help="report folder (default: reports/data)")
    p.add_argument("--min-size", type=int, default=t.min_size, help="smallest width/height, px")
    p.add_argument("--near-distance", type=int, default=t.near_distance, help="max differing bits of 64-bit dHashes for a near duplicate")  # fmt: skip
    p.add_argument("--near-correlation", type=float, default=t.near_correlation, help="min correlation of 16x16 gray thumbnails for a near duplicate")  # fmt: skip
    p.add_argument("--min-per-class", type=int, default=t.min_per_class, help="fewest images (boxes: objects) of a class")  # fmt: skip
    p.add_argument("--max-imbalance", type=float, default=t.max_imbalance, help="largest/smallest class")  # fmt: skip
    p.add_argument("--outlier-z", type=float, default=t.outlier_z, help="robust z-score limit")
    p.add_argument("--quarantine-outliers", action="store_true", help="also quarantine the outliers")  # fmt: skip
    p.add_argument("--workers", type=int | None, default=None, help="scan threads (default: CPUs, <= 8)")  # fmt: skip
    add_kind_arguments(p, "validate")
    return p


@main_guard
def main(argv: list[str] | None = None) -> dict[str, Any]:
    p, args = parse_data(parser, argv, "validate")
    from mlcycle.quality.config import config_names, data_arguments, instantiate_data

    if not 0 <= args.near_distance <= 64:
        raise UserError(f"--near-distance {args.near_distance} must be between 0 and 64")
    given = data_arguments(argv if argv is not None else sys.argv[1:])
    part, dm = part_and_data(args, lambda: instantiate_data(p, args))
    return part.validate(args, dm, config_names(args), given)
