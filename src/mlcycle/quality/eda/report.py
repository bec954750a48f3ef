"""``eda.py`` on images: ``index.html``, ``eda.json`` and the executed notebook ``eda.ipynb``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlcycle.quality.eda import notebook
from mlcycle.quality.eda.analysis import EDA, analyse_data
from mlcycle.quality.eda.html import write_html


def summary(eda: EDA) -> dict[str, Any]:
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


def write_eda(args: Any, dm: Any, configs: list[str], overrides: list[str], part: Any) -> Path:
    """Analyse the images of ``dm`` (``part``: its kind's quality part) and write the report
    folder ``args.out``; the notebook unless ``args.no_notebook``."""
    eda = analyse_data(
        dm, configs, overrides, args.sample, args.include_test, args.seed, args.workers, part
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    page = write_html(eda, out / "index.html")
    (out / "eda.json").write_text(json.dumps(summary(eda), indent=2, default=str) + "\n")
    print(f"{len(eda.items)} images analysed ({', '.join(eda.splits_read)}); report: {page}")
    if not args.no_notebook:
        notebook.execute_and_write(notebook.build(eda, Path.cwd()), out / "eda.ipynb")
    return out
