"""``scripts/eda.py``: an HTML report and an executed notebook of a config's data.

python scripts/eda.py --config configs/image_folder.yaml --data.root PATH [--out reports/eda]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from mlcycle.commands.guard import main_guard
from mlcycle.core.errors import UserError
from mlcycle.quality.config import config_names, data_arguments, data_parser, parse
from mlcycle.quality.eda import notebook
from mlcycle.quality.eda.analysis import analyse
from mlcycle.quality.eda.html import write_html
from mlcycle.quality.tables import report as table_report
from mlcycle.quality.tables import source as table_source


def parser() -> Any:
    p = data_parser(
        "eda.py",
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
    table_source.add_arguments(p)
    return p


def summary(eda: Any) -> dict[str, Any]:
    """What ``eda.json`` records: the choices made and the counts, no pixel statistics."""
    return {
        "configs": eda.configs,
        "task": eda.task,
        "count_unit": eda.count_unit,
        "overrides": eda.overrides,
        "include_test": eda.include_test,
        "splits_read": eda.splits_read,
        "sample": eda.sample,
        "seed": eda.seed,
        "images_analysed": len(eda.items),
        "sampled_out": eda.sampled_out,
        "test_files_not_read": eda.skipped_test,
        "counts": eda.all_counts,
        "findings": {k: len(v) for k, v in eda.findings.items()},
        "seconds": eda.seconds,
        "created": eda.created,
    }


@main_guard
def main(argv: list[str] | None = None) -> Path:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse(parser(), argv)  # every key checked before anything is read
    if args.sample is not None and args.sample < 10:
        raise UserError(f"--sample {args.sample} is too small; use 10 or more")
    overrides = data_arguments(argv)
    configs = config_names(args)
    if table_source.wanted(args):
        return table_report.run(args)
    if table_source.names_table_module(args):
        return table_report.run(args, configs, overrides)
    eda = analyse(configs, overrides, args.sample, args.include_test, args.seed, args.workers)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    page = write_html(eda, out / "index.html")
    (out / "eda.json").write_text(json.dumps(summary(eda), indent=2, default=str) + "\n")
    print(f"{len(eda.items)} images analysed ({', '.join(eda.splits_read)}); report: {page}")
    if args.no_notebook:
        return out
    nb = notebook.build(eda, Path.cwd())
    try:
        notebook.execute(nb, Path.cwd())
    except Exception as exc:  # the kernel could not start or a cell failed
        notebook.write_notebook(nb, out / "eda.ipynb")
        sys.stderr.write(f"error: the notebook did not execute ({type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:300]}); saved unexecuted: {out / 'eda.ipynb'}\n")  # fmt: skip
        raise SystemExit(1) from exc
    notebook.write_notebook(nb, out / "eda.ipynb")
    print(f"executed notebook: {out / 'eda.ipynb'}")
    return out
