"""How a data root is laid out: split folders (``train/``, ``val/``, ``test/``) or classes.

Folder names are matched case-insensitively: ``train``; ``val``, ``valid``, ``validation``,
``dev``; ``test``, ``testing``. A root whose folders are all split names and include a train
folder is a split layout; a root mixing split names and other folders is ambiguous and stops
with the option that settles it (``data.layout=splits|classes``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mlcycle.core.errors import UserError
from mlcycle.data.images import is_image_file

SPLIT_NAMES = {
    "train": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
}
LAYOUTS = ("auto", "splits", "classes")
PLAIN = "plain image folder (splits drawn)"  # what a non-split folder is, in layout messages


def split_of(name: str) -> str | None:
    """``train``/``val``/``test`` for a split folder name (any case), else ``None``."""
    return SPLIT_NAMES.get(name.lower())


def visible_dirs(path: Path) -> list[Path]:
    """Sub-folders (links to folders included) whose names do not start with a dot."""
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def split_folders(root: Path, layout: str = "auto", what: str = "class") -> dict[str, Path]:
    """The split folders of ``root`` by split, or ``{}`` when its folders are ``what`` folders.

    ``layout`` is ``auto`` (decide by the folder names), ``splits`` or ``classes`` (force).
    """
    if layout not in LAYOUTS:
        raise UserError(f"data.layout='{layout}' is not one of {', '.join(LAYOUTS)}")
    if layout == "classes":
        return {}
    found: dict[str, Path] = {}
    others: list[str] = []
    for folder in visible_dirs(root):
        split = split_of(folder.name)
        if split is None:
            others.append(folder.name)
            continue
        if split in found:
            raise UserError(
                f"'{root}' has two {split} folders, {found[split].name}/ and {folder.name}/; "
                "keep one, or point data.root at a folder with one of them"
            )
        found[split] = folder
    if layout == "splits":
        if "train" not in found:
            raise UserError(
                f"data.layout=splits but '{root}' has no train folder (folders: "
                f"{', '.join(sorted(others + [p.name for p in found.values()])) or 'none'})"
            )
        return found
    if found and others:
        named = ", ".join(p.name + "/" for p in found.values())
        rest = ", ".join(n + "/" for n in others[:5]) + (" ..." if len(others) > 5 else "")
        raise UserError(
            f"'{root}' mixes split folders ({named}) with other folders ({rest}); set "
            f"--data.layout=splits to read the split folders only, or --data.layout=classes to "
            f"read every folder as a {what}"
        )
    if found and "train" not in found:
        named = ", ".join(p.name + "/" for p in found.values())
        raise UserError(
            f"'{root}' has split folders ({named}) but no train folder; add train/, or set "
            f"--data.layout=classes to read them as {what} folders"
        )
    return found


def root_folder(root: str | None, needs: str) -> Path:
    """``data.root`` as an existing folder; the errors say what it should hold (``needs``)."""
    if not root:
        raise UserError(f"data.root is not set; pass --data.root PATH to {needs}")
    base = Path(root).expanduser()
    if not base.is_dir():
        raise UserError(
            f"data root '{root}' does not exist or is not a folder; pass --data.root PATH to {needs}"
        )
    return base


def folder_names(folders: dict[str, Path]) -> str:
    """``train/ test/``: the split folders' own names, in split order."""
    return " ".join(folders[s].name + "/" for s in ("train", "val", "test") if s in folders)


def describe_folders(folders: dict[str, Path]) -> str:
    """``split folders train/ test/`` for the layout line."""
    return f"split folders {folder_names(folders)}"


def loose_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` (not in a sub-folder), sorted."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and is_image_file(p) and not p.name.startswith(".")
    )


def loose_files(folder: Path, names: str) -> list[tuple[str, str]]:
    """Image files directly in ``folder`` next to its split folders (``names``), as skipped."""
    return [(str(p), f"not in a split folder ({names}) of {folder}") for p in loose_images(folder)]


def announce(text: str) -> None:
    """Print ``layout: <text>`` once per process (rank 0 only), before any other data output."""
    if os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("RANK", "0") != "0":
        return
    print(f"layout: {text}", file=sys.stdout, flush=True)


def leaves_root(relative: str | Path, root: Path) -> bool:
    """True when a manifest path, read as written, points outside ``root`` (absolute elsewhere,
    or ``..`` climbing out). Links inside the root are the user's own and are not judged here."""
    base = absolute(root)
    path = Path(relative).expanduser()
    full = Path(os.path.normpath(path if path.is_absolute() else base / path))
    # An absolute path may name the root by its real location (the root given through a link).
    return not (full.is_relative_to(base) or full.is_relative_to(os.path.realpath(base)))


def absolute(path: Path) -> Path:
    """``path`` made absolute without following links: a link keeps its own place."""
    return Path(os.path.normpath(Path(path).expanduser().absolute()))


def data_root(paths: list[Path]) -> Path:
    """The deepest folder holding every path (links not followed), for relative manifest paths."""
    return Path(os.path.commonpath([str(absolute(p).parent) for p in paths]))


def relative_name(path: Path, root: Path) -> str:
    """``path`` below ``root`` as a POSIX string (links not followed); the name if outside."""
    try:
        return absolute(path).relative_to(root).as_posix()
    except ValueError:
        return Path(path).name


def walk_files(folder: Path) -> list[Path]:
    """Every non-hidden file below ``folder``, sorted, links to files and folders followed
    (each real folder visited once, so a link loop ends)."""
    found: list[Path] = []
    seen: set[str] = set()
    for top, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(top)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(top) / f for f in files if not f.startswith(".")]
    return sorted(found)
