"""Long options in either spelling (``--top_k`` for ``--top-k``), as train.py spells its
flags. The standard library only: predict.py on a device and mlcycle's argparse commands
(``mlcycle.commands.guard``) share it."""

from __future__ import annotations

from collections.abc import Collection


def either_spelling(argv: list[str], known: Collection[str]) -> list[str]:
    """Each long option spelled as ``known`` spells it (``--top_k`` -> ``--top-k``); after
    ``--`` and for options known in neither spelling, ``argv`` is left as it is."""
    out = []
    for i, arg in enumerate(argv):
        if arg == "--":
            return out + argv[i:]
        name, eq, value = arg.partition("=")
        if name.startswith("--") and name not in known:
            dashed, underscored = name[2:].replace("_", "-"), name[2:].replace("-", "_")
            name = next((f"--{o}" for o in (dashed, underscored) if f"--{o}" in known), name)
        out.append(name + eq + value)
    return out
