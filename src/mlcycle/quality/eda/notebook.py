"""The analysis as a Jupyter notebook (nbformat) that recomputes everything when re-run, and
its execution (nbclient + ipykernel) so that it opens with every output in place."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from mlcycle.quality.eda.analysis import EDA
from mlcycle.quality.eda.sections import SECTIONS, call

# The notebooks' show(): a table (HTML) or a figure, through the setup cell's ``figures.png``.
SHOW = """\
def show(part):
    if isinstance(part, str):
        display(HTML(part or "<p>nothing to show</p>"))
    else:
        display(Image(figures.png(part)) if part is not None else HTML("<p>nothing to show</p>"))
"""

SETUP = (
    """\
import os
import warnings

warnings.filterwarnings("ignore", message="IProgress not found")  # no ipywidgets: plain bars
os.chdir({workdir!r})  # where the configs' relative paths point

from IPython.display import HTML, Image, display

from mlcycle.quality.eda import analysis, annotations, figures, tables


"""
    + SHOW
    + """

eda = analysis.analyse(
    configs={configs!r},
    overrides={overrides!r},
    sample={sample!r},
    include_test={include_test!r},  # True only when --include-test was given
    seed={seed!r},
)"""
)


def build(eda: EDA, workdir: Path) -> nbformat.NotebookNode:
    """A notebook whose cells call the same analysis, tables and figures as the HTML page."""
    test = "**includes the test split** (`--include-test`)" if eda.include_test else (
        "reads train and val only; the test split stays sealed"
    )  # fmt: skip
    intro = (
        "# Exploratory data analysis\n\n"
        f"Configs: `{', '.join(eda.configs)}`. This analysis {test}. "
        "Re-run all cells to recompute it from the data."
    )
    sections = [
        (heading, [call(module, name, *args) for module, name, *args in entries])
        for heading, entries in SECTIONS
    ]
    return assemble(head_cells(intro, SETUP, eda, workdir), sections)


def head_cells(
    intro: str, setup: str, eda: Any, workdir: Path, **fields: Any
) -> list[nbformat.NotebookNode]:
    """The first two cells of an EDA notebook (images or a table): ``intro`` as markdown, and
    ``setup`` filled in with the choices of ``eda`` (and ``fields``) to recompute the analysis."""
    code = setup.format(
        workdir=str(workdir.resolve()),
        configs=[str(Path(c).resolve()) for c in eda.configs],
        overrides=eda.overrides,
        sample=eda.sample,
        include_test=eda.include_test,
        seed=eda.seed,
        **fields,
    )
    return [new_markdown_cell(intro), new_code_cell(code)]


def assemble(
    head: list[nbformat.NotebookNode], sections: list[tuple[str, list[str]]]
) -> nbformat.NotebookNode:
    """A Python 3 notebook: the ``head`` cells, then per section a heading and one
    ``show(<expression>)`` cell per expression (the image and the table EDA notebooks)."""
    cells = list(head)
    for heading, expressions in sections:
        cells.append(new_markdown_cell(f"## {heading}"))
        cells += [new_code_cell(f"show({expr})") for expr in expressions]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def execute(nb: nbformat.NotebookNode, workdir: Path, timeout: int = 1800) -> None:
    """Run every cell in a fresh ipykernel of this Python; raises on the first failing cell."""
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from traitlets import CaselessStrEnum

    class LocalSocketKernel(AsyncKernelManager):
        """Local sockets (ipc) in Jupyter's runtime folder rather than unencrypted TCP ports."""

        transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # quiet debugpy start-up
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        kernel_manager_class=LocalSocketKernel,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()


def write_notebook(nb: nbformat.NotebookNode, path: Path) -> Path:
    nbformat.write(nb, str(path))
    return path


def execute_and_write(nb: nbformat.NotebookNode, path: Path) -> Path:
    """Execute ``nb`` and write it to ``path``. When it cannot run, it is written unexecuted and
    the command stops with one error line (exit 1)."""
    try:
        execute(nb, Path.cwd())
    except Exception as exc:  # the kernel could not start or a cell failed
        write_notebook(nb, path)
        sys.stderr.write(
            f"error: the notebook did not execute ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:300]}); saved unexecuted: {path}\n"
        )
        raise SystemExit(1) from exc
    write_notebook(nb, path)
    print(f"executed notebook: {path}")
    return path
