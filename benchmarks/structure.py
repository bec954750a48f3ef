"""The structure of a checkout, in numbers: import cycles between packages and between files,
files over 400 lines and functions over 60.

    python benchmarks/structure.py            # this checkout's src/mlcycle
    python benchmarks/structure.py --src OTHER_CHECKOUT/src --against .   # side by side

Imports are read from the source (``ast``), those inside functions included and those under
``if TYPE_CHECKING:`` left out, as import-linter counts them. A package is a first-level folder
or module of ``mlcycle``; a file circle is a strongly connected set of modules that import
each other.
"""

from __future__ import annotations

import argparse
import ast
from collections import defaultdict
from pathlib import Path

MAX_FILE, MAX_FUNCTION = 400, 60


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(test)


def imports(tree: ast.Module, me: str, is_package: bool) -> list[str]:
    """The mlcycle modules ``tree`` imports (a ``from`` import counts the module and its names)."""
    found: list[str] = []

    def visit(node: ast.AST) -> None:
        if _type_checking(node):
            return
        if isinstance(node, ast.Import):
            found.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = me.split(".")[: None if is_package else -1]
            if node.level:
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.extend(f"{module}.{a.name}" for a in node.names)
            found.append(module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return [m for m in found if m.startswith("mlcycle")]


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the components with more than one node."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def measure(src: Path) -> dict[str, object]:
    root = src / "mlcycle"
    modules = {module_name(p, src): p for p in sorted(root.rglob("*.py"))}
    packages: dict[str, set[str]] = defaultdict(set)
    files: dict[str, set[str]] = defaultdict(set)
    long_files, long_functions = [], []
    for name, path in modules.items():
        text = path.read_text()
        tree = ast.parse(text)
        lines = len(text.splitlines())
        if lines > MAX_FILE:
            long_files.append(f"{path.relative_to(src)} ({lines})")
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                size = node.end_lineno - node.lineno + 1
                if size > MAX_FUNCTION:
                    long_functions.append(f"{path.relative_to(src)}:{node.name} ({size})")
        for target in imports(tree, name, path.name == "__init__.py"):
            if target not in modules:
                continue
            mine, theirs = name.split(".")[:2], target.split(".")[:2]
            if len(mine) > 1 and len(theirs) > 1 and mine[1] != theirs[1]:
                packages[mine[1]].add(theirs[1])
            if target != name and not name.startswith(target + "."):
                files[name].add(target)
    cycles = strongly_connected(packages)
    return {
        "package cycles": [f"{len(c)} packages: {', '.join(c)}" for c in cycles],
        "packages in a cycle": sum(len(c) for c in cycles),
        "file circles": [" <-> ".join(c) for c in strongly_connected(files)],
        f"files over {MAX_FILE} lines": long_files,
        f"functions over {MAX_FUNCTION} lines": long_functions,
        "lines": sum(len(p.read_text().splitlines()) for p in modules.values()),
    }


def show(label: str, figures: dict[str, object]) -> None:
    print(f"== {label}")
    for key, value in figures.items():
        if isinstance(value, list):
            print(f"{key}: {len(value)}")
            for item in value:
                print(f"    {item}")
        else:
            print(f"{key}: {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=Path(__file__).resolve().parents[1] / "src")
    parser.add_argument("--against", type=Path, help="another checkout, measured beside it")
    args = parser.parse_args()
    if args.against:
        show(str(args.against / "src"), measure(args.against / "src"))
    show(str(args.src), measure(args.src))


if __name__ == "__main__":
    main()
