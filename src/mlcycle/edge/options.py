"""Long options in either spelling (``--top_k`` for ``--top-k``), as train.py spells its
flags. The standard library only: predict.py on a device and mlcycle's argparse commands
(``mlcycle.commands.guard``) share it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection, Sequence


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


class Parser(argparse.ArgumentParser):
    """argparse with one ``error:`` line and exit code 2 for a bad option, and a long option
    accepted in its other spelling (``--top_k`` for ``--top-k``); ``--help`` lists one.
    predict.py's parser, and the base of mlcycle's ``ArgParser``."""

    def error(self, message: str):  # type: ignore[override]
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        argv = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(
            either_spelling(argv, self._option_string_actions), namespace
        )
