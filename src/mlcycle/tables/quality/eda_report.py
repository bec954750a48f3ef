"""``eda.py`` on a table: ``index.html`` (self-contained), every figure as a PNG in ``figures/``,
``eda.json`` and the executed notebook ``eda.ipynb``, as for images."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat

from mlcycle.core.errors import UserError
from mlcycle.quality.eda.html import Part, draw_sections, figure_part, html_part, page
from mlcycle.quality.eda.notebook import SHOW, assemble, execute_and_write, head_cells
from mlcycle.tables.quality import figures, parts
from mlcycle.tables.quality.analysis import TableEDA, analyse_table
from mlcycle.tables.quality.columns import pipeline_setting
from mlcycle.tables.quality.source import from_module, load, spec_from_arguments

MODULES = {"parts": parts, "figures": figures}
# (heading, [(module, function)]): the HTML page and the notebook follow this outline; a figure
# with nothing to show returns None, a table "".
SECTIONS: list[tuple[str, list[tuple[str, str]]]] = [
    ("What was read", [("parts", "provenance")]),
    (
        "Columns: type, missing values, distinct values",
        [("parts", "columns"), ("figures", "missing")],
    ),
    ("The target", [("figures", "target")]),
    ("Distributions", [("figures", "distributions")]),
    ("Skew and suggested transforms", [("parts", "transforms"), ("figures", "transforms")]),
    ("Outliers (IQR rule)", [("parts", "outliers"), ("figures", "outliers")]),
    ("Correlations", [("figures", "correlations"), ("parts", "correlated")]),
    (
        "Features against the target, and leakage",
        [("parts", "target"), ("figures", "leakage"), ("figures", "target_relationship")],
    ),
    ("k-means and PCA", [("parts", "clusters"), ("figures", "pca"), ("figures", "clusters")]),
]

SETUP = (
    """\
import os
import warnings

warnings.filterwarnings("ignore", message="IProgress not found")  # no ipywidgets: plain bars
os.chdir({workdir!r})  # where the relative paths point

from IPython.display import HTML, Image, display

from mlcycle.tables.quality import analysis, figures, parts


"""
    + SHOW
    + """

eda = analysis.analyse(
    spec={spec!r},  # the table of --table; None: the table of the configs' data section
    configs={configs!r},
    overrides={overrides!r},
    include_test={include_test!r},  # True only when --include-test was given
    sample={sample!r},
    seed={seed!r},
)"""
)


def render(eda: TableEDA, out: Path) -> str:
    """The page as a string; each figure is also written to ``out/figures/<name>.png``."""
    folder = out / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    test = (
        "not read (sealed); pass --include-test to include it"
        if not eda.include_test
        else "read (--include-test)"
    )
    if eda.split_counts is None:
        test = "not known: these rows have no split yet, so every row is analysed"
    note = (
        f"Table {eda.spec.where}, target {eda.target} ({eda.task}); {len(eda.frame)} rows "
        f"analysed. The test split: {test}."
    )

    def draw(entry: tuple[str, str]) -> Part:
        module, name = entry
        part = getattr(MODULES[module], name)(eda)
        if part is None or isinstance(part, str):
            return html_part(part)
        data = figures.png(part)
        (folder / f"{name}.png").write_bytes(data)
        return figure_part(name, data)

    sections = draw_sections(SECTIONS, draw, len(eda.frame) < 20_000)
    title = f"EDA: {eda.spec.where}"
    return page(title, "Exploratory data analysis of a table", note, sections)


def summary(eda: TableEDA) -> dict[str, Any]:
    """What ``eda.json`` records: the choices made, the counts and the per-column summary."""
    return {
        "kind": "table",
        "table": eda.spec.to_dict() | {"url": eda.spec.where if eda.spec.url else None},
        "configs": eda.configs,
        "overrides": eda.overrides,
        "target": eda.target,
        "task": eda.task,
        "include_test": eda.include_test,
        "splits_read": eda.splits_read,
        "split_counts": eda.split_counts,
        "sample": eda.sample,
        "seed": eda.seed,
        "rows_total": eda.rows_total,
        "rows_analysed": len(eda.frame),
        "columns": [c.summary() for c in eda.columns],
        "suggested_transforms": {
            c.name: {**c.transform, "pipeline": pipeline_setting(c.name, c.transform["name"])}
            for c in eda.columns
            if c.transform
        },
        "strong_pairs": eda.strong_pairs,
        "association": {k: {"value": v, "measure": m} for k, (v, m) in eda.association.items()},
        "single_feature_scores": eda.leak_scores,
        "leakage": eda.leaks,
        "pca_explained_variance": eda.pca_variance,
        "kmeans": {"k": eda.k, "silhouettes": eda.silhouettes, **eda.cluster_target},
        "seconds": eda.seconds,
        "created": eda.created,
    }


def notebook(eda: TableEDA, workdir: Path) -> nbformat.NotebookNode:
    """A notebook whose cells call the same analysis, tables and figures as the HTML page."""
    spec = None
    if not eda.configs:
        spec = eda.spec.to_dict() | {"url": eda.spec.where if eda.spec.url else None}
        if spec["path"] and eda.spec.source in ("csv", "parquet"):
            spec["path"] = str(Path(spec["path"]).resolve())
    test = (
        "**includes the test split** (`--include-test`)"
        if eda.include_test
        else (
            "reads train and val only; the test split stays sealed"
            if eda.split_counts is not None
            else "reads every row (the rows have no split yet)"
        )
    )
    intro = (
        f"# Exploratory data analysis of a table\n\nTable `{eda.spec.where}`, target "
        f"`{eda.target}` ({eda.task}). This analysis {test}. Re-run all cells to recompute "
        "it from the data."
        + (
            " A database password is not recorded: put it back into `url` below."
            if spec and spec["url"] and "***" in spec["url"]
            else ""
        )
    )
    sections = [
        (heading, [f"{module}.{name}(eda)" for module, name in entries])
        for heading, entries in SECTIONS
    ]
    return assemble(head_cells(intro, SETUP, eda, workdir, spec=spec), sections)


def run(args: Any, dm: Any, configs: list[str], overrides: list[str]) -> Path:
    """eda.py on the table of ``--table`` (``dm`` None) or of a config's ``TabularData``."""
    if args.sample is not None and args.sample < 10:
        raise UserError(f"--sample {args.sample} is too small; use 10 or more")
    if dm is None:
        table = load(spec_from_arguments(args))
    else:
        table = from_module(dm, configs, overrides)
    eda = analyse_table(table, args.include_test, args.sample, args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    page_path = out / "index.html"
    page_path.write_text(render(eda, out), encoding="utf-8")
    (out / "eda.json").write_text(json.dumps(summary(eda), indent=2, default=str) + "\n")
    print(
        f"{len(eda.frame)} rows, {len(eda.columns)} columns analysed; report: {page_path}, figures: {out / 'figures'}"
    )
    for leak in eda.leaks:
        print(f"warning: column '{leak['column']}' {leak['reason']}: a leak?")
    if not args.no_notebook:
        execute_and_write(notebook(eda, Path.cwd()), out / "eda.ipynb")
    return out
