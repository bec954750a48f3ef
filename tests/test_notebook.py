"""docs/notebooks/quickstart.ipynb runs from its own folder with nbclient on this venv's python:
no cell errors, the run shows inline, the leaderboard has rows, predictions come back, and it
writes only under runs/."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "docs" / "notebooks" / "quickstart.ipynb"


def test_the_notebook_is_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


def venv_kernel(folder: Path) -> str:
    """A kernel spec running this interpreter (the venv's python), found through JUPYTER_PATH."""
    spec = folder / "kernels" / "mlcycle-venv"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel = {"argv": argv, "display_name": "mlcycle venv", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel))
    return "mlcycle-venv"


def outputs(cell) -> dict[str, str]:
    """A cell's outputs by MIME type (text/plain, text/html, image/png, widgets), text joined."""
    found: dict[str, str] = {}
    for output in cell.outputs:
        if output.output_type == "error":
            found["error"] = f"{output.ename}: {output.evalue}"
        if output.output_type == "stream":
            found[output.name] = found.get(output.name, "") + output.text
        for mime, value in output.get("data", {}).items():
            found[mime] = found.get(mime, "") + (value if isinstance(value, str) else str(value))
    return found


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> tuple[Path, dict[str, dict[str, str]]]:
    """The notebook run in a working copy (configs/ and docs/notebooks/), from its own folder."""
    copy = tmp_path_factory.mktemp("notebook")
    shutil.copytree(REPO / "configs", copy / "configs")
    (copy / "docs" / "notebooks").mkdir(parents=True)
    shutil.copy(NOTEBOOK, copy / "docs" / "notebooks")
    before = {p for p in copy.rglob("*")}
    kernels = tmp_path_factory.mktemp("jupyter")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(kernels))
        client = NotebookClient(
            notebook,
            timeout=300,
            kernel_name=venv_kernel(kernels),
            resources={"metadata": {"path": str(copy / "docs" / "notebooks")}},
        )
        start = time.perf_counter()
        client.execute()  # raises CellExecutionError on the first cell that errs
    seconds = time.perf_counter() - start
    print(f"quickstart.ipynb executed in {seconds:.1f} s")
    written = {p for p in copy.rglob("*") if p.is_file()} - before
    assert written and all(p.relative_to(copy).parts[0] == "runs" for p in written)
    by_source = {cell.source: outputs(cell) for cell in notebook.cells if cell.cell_type == "code"}
    return copy, by_source


def cell(by_source: dict[str, dict[str, str]], start: str) -> dict[str, str]:
    """The outputs of the one code cell whose source starts with ``start``."""
    (found,) = [out for source, out in by_source.items() if source.startswith(start)]
    return found


@pytest.mark.slow
def test_the_notebook_walks_the_life_cycle(executed):
    copy, by_source = executed
    assert not [out["error"] for out in by_source.values() if "error" in out]
    # training shows tqdm's notebook bars (ipywidgets), not text bars
    assert "application/vnd.jupyter.widget-view+json" in cell(by_source, "run = mlcycle.train")
    shown = by_source["run"]
    assert "Gate: <strong>passed</strong>" in shown["text/html"]
    assert "val/f1" in shown["text/html"] and "data:image/png;base64," in shown["text/html"]
    assert cell(by_source, 'run.figures["misclassified"]')["image/png"]
    assert cell(by_source, 'run.figures["confusion_matrix"]')["image/png"]
    board = cell(by_source, "board = mlcycle.compare")["text/html"]
    assert "small_cnn" in board and "logistic" in board
    leaderboard = json.loads((copy / "runs/compare/digits/leaderboard.json").read_text())
    assert sorted(row["candidate"] for row in leaderboard["rows"]) == ["logistic", "small_cnn"]
    assert "model.onnx" in cell(by_source, "export = run.export")["text/plain"]
    (export,) = (copy / "runs" / "quickstart").glob("*/export")
    assert (export / "model.onnx").is_file() and (export / "model.json").is_file()
    # four answers (three paths and a PIL image of the first), the first and the last alike
    answers = cell(by_source, "from PIL import Image")["text/plain"]
    assert answers.count("'class'") == 4
    first, *_, last = answers.strip("[]\n").split("\n")
    assert first.strip(" ,") == last.strip(" ,") and first.lstrip().startswith("('0', {'class': '")
