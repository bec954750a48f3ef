"""The rooms stay livable: no module over 400 lines, no function over 60, and every path that
docs/architecture.md names exists. (The layers themselves are checked by ``lint-imports``,
which ``make test`` runs before pytest.)"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "mlcycle"
MAX_FILE, MAX_FUNCTION = 400, 60


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_no_module_over_400_lines():
    long = [
        f"{p.relative_to(ROOT)} ({n})"
        for p in _modules()
        if (n := len(p.read_text().splitlines())) > MAX_FILE
    ]
    assert not long, f"split these by job: {long}"


def test_no_function_over_60_lines():
    long = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                size = node.end_lineno - node.lineno + 1
                if size > MAX_FUNCTION:
                    long.append(f"{path.relative_to(ROOT)}:{node.name} ({size})")
    assert not long, f"split these: {long}"


# `src/mlcycle/serve/app.py`, `serve/app.py`, `tables/`, `scripts/train.py`: a path in backticks.
PATH = re.compile(r"`((?:[\w.-]+/)+(?:[\w.-]+\.(?:py|md|toml|yaml|html|css))?)`")


def _named_paths(doc: Path) -> list[str]:
    return sorted(set(PATH.findall(doc.read_text())))


def _exists(name: str) -> bool:
    return any((base / name).exists() for base in (ROOT, ROOT / "src", SRC))


@pytest.mark.parametrize("doc", ["docs/architecture.md"])
def test_every_path_the_architecture_doc_names_exists(doc):
    names = _named_paths(ROOT / doc)
    assert len(names) > 20, "the architecture doc names the packages and files it describes"
    missing = [n for n in names if not _exists(n)]
    assert not missing, f"{doc} names paths that do not exist: {missing}"


def _layout_paths(doc: Path) -> list[str]:
    """The files and folders the ``## Packages`` block names, as paths under src/mlcycle:
    a line ``  serve/   app.py, store.py`` names serve/app.py and serve/store.py."""
    text = doc.read_text().split("## Packages", 1)[1].split("```")[1]
    names, folder = [], ""
    for line in text.splitlines():
        start = re.match(r"  ([a-z_/]+/)\s", line)
        if start:
            folder = start.group(1)
            names.append(folder)
        for token in re.findall(r"(?<![\w./-])([a-z_]+/|[a-z_]+\.(?:py|html|css))(?![\w/])", line):
            if not folder.endswith(token):
                names.append(folder + token)
    return names


def test_every_package_and_file_of_the_layout_exists():
    names = _layout_paths(ROOT / "docs" / "architecture.md")
    assert len(names) > 60
    missing = [n for n in names if not (SRC / n).exists()]
    assert not missing, f"docs/architecture.md's package layout names missing paths: {missing}"


def test_every_package_is_in_the_layout():
    named = {n.split("/")[0] for n in _layout_paths(ROOT / "docs" / "architecture.md")}
    packages = {p.name for p in SRC.iterdir() if (p / "__init__.py").exists()}
    assert packages <= named, f"packages the layout leaves out: {sorted(packages - named)}"


def test_the_path_check_can_fail(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("See `serve/app.py` and `serve/nothing_here.py` and `tables/`.")
    names = _named_paths(doc)
    assert names == ["serve/app.py", "serve/nothing_here.py", "tables/"]
    assert [n for n in names if not _exists(n)] == ["serve/nothing_here.py"]
