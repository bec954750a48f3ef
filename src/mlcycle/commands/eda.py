"""``mlcycle eda``: an HTML report and an executed notebook of a config's data.

    mlcycle eda --config configs/image_folder.yaml --data.root PATH [--out reports/eda]
    mlcycle eda --table data.csv --target y

The data module's kind (``data_kind``) chooses the analysis (``mlcycle.quality.kinds``); a kind
may also be named on the command line without a config (a table: ``--table``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from mlcycle.commands.guard import main_guard
from mlcycle.commands.parser import parse_data
from mlcycle.core.errors import UserError
from mlcycle.quality.kinds import add_kind_arguments, part_and_data


def parser() -> Any:
    from mlcycle.quality.config import data_parser

    p = data_parser(
        "mlcycle eda",
        "Exploratory analysis of a config's train and val data (classification, segmentation or "
        "detection): reports/eda/index.html and eda.ipynb. Reads the config as train.py does. "
        "A table (--table PATH --target COLUMN, or a TabularData config): docs/tables.md.",
    )
    p.add_argument("--out", default="reports/eda", help="report folder (default: reports/eda)")
    p.add_argument("--sample", type=int | None, default=None, help="analyse at most N images")
    p.add_argument(
        "--include-test",
        action="store_true",
        help="also read the test split (an explicit choice, recorded in the report)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of --sample and t-SNE")
    p.add_argument("--no-notebook", action="store_true", help="write only index.html")
    p.add_argument("--workers", type=int | None, default=None, help="reading threads")
    add_kind_arguments(p, "eda")
    return p


@main_guard
def main(argv: list[str] | None = None) -> Path:
    argv = sys.argv[1:] if argv is None else list(argv)
    _, args = parse_data(parser, argv, "eda")  # every key checked before anything is read
    from mlcycle.quality.config import build_data, config_names, data_arguments

    if args.sample is not None and args.sample < 10:
        raise UserError(f"--sample {args.sample} is too small; use 10 or more")
    overrides = data_arguments(argv)
    configs = config_names(args)
    part, dm = part_and_data(args, lambda: build_data(configs, overrides))
    return part.explore(args, dm, configs, overrides)
