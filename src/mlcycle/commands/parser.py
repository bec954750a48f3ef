"""The typed command line every command but train.py shares (jsonargparse, as train.py's).

Each command gets ``--config`` (a YAML of its keys; repeat it to compose, a later one wins),
``--print_config``, a ``--help`` that lists every key with its type and default, a long option
in either spelling (``--batch-size`` for ``--batch_size``) and one-line errors (exit code 2)
naming the key, with the closest key of this command, or the command a key belongs to.
"""

from __future__ import annotations

import importlib
import sys
from argparse import ArgumentError
from collections.abc import Callable
from typing import Any

from jsonargparse import ActionConfigFile, ArgumentParser, Namespace

from mlcycle.core.errors import UserError
from mlcycle.core.keys import key_error
from mlcycle.edge.options import either_spelling

CONFIG_HELP = "a YAML file of this command's keys; repeat it to compose several (a later one wins)"
SKIPPED = {"help", "print_config", "config"}


class CommandParser(ArgumentParser):
    """jsonargparse for one ``mlcycle <command>``: its errors are one line (:meth:`parse`)."""

    def __init__(
        self, command: str = "", description: str | None = None, config: bool = True, **kwargs: Any
    ) -> None:
        # jsonargparse builds the parsers of nested types with this class and its own kwargs
        kwargs.setdefault("exit_on_error", False)
        if command:
            kwargs.setdefault("prog", f"mlcycle {command}")
        super().__init__(description=description, **kwargs)
        self.command = command
        self.repeatable: set[str] = set()  # list keys a repeated option adds to
        if command and config:
            self.add_argument("--config", action=ActionConfigFile, help=CONFIG_HELP)

    def add_repeatable(self, name: str, help: str) -> None:
        """``--name VALUE``, repeatable; each adds to the list (a config's list included)."""
        self.add_argument(f"--{name}", type=list[str], default=[], help=help)
        self.repeatable.add(f"--{name}")

    def spelled(self, argv: list[str] | None) -> list[str]:
        """``argv`` with each option spelled as this parser spells it, and a repeated list
        option made to add (``--limitations X`` -> ``--limitations+ X``)."""
        argv = either_spelling(list(sys.argv[1:] if argv is None else argv), self.options())
        out = []
        for arg in argv:
            name, eq, value = arg.partition("=")
            out.append(f"{name}+{eq}{value}" if name in self.repeatable else arg)
        return out

    def options(self) -> dict[str, Any]:
        return self._option_string_actions

    def parse(self, argv: list[str] | None = None) -> Namespace:
        """The parsed arguments; a bad key or value raises :class:`UserError` (one line)."""
        try:
            return self.parse_args(self.spelled(argv))
        except ArgumentError as exc:
            raise UserError(self.explain(str(exc))) from exc

    def explain(self, message: str) -> str:
        """One line for a jsonargparse error: the key belongs to another command, or the
        closest key of this one."""
        line = key_error(message, option_keys(self))
        return other_command(line, self.command) or f"{line} (see {self.prog} --help)"

    def split(self, argv: list[str] | None) -> tuple[Namespace, list[str]]:
        """This command's keys, parsed, and the other ``--key=value`` it passes on to train.py
        (with their values, and all after ``--``); a single-dash option is refused (a typo,
        never a train.py key)."""
        argv = self.spelled(argv)
        end = argv.index("--") if "--" in argv else len(argv)
        own: list[str] = []
        extra: list[str] = []
        into, many = None, False  # where the values that follow go
        for arg in argv[:end]:
            name, eq, _ = arg.partition("=")
            if not arg.startswith("-") or arg[1:2].isdigit():
                (extra if into is None else into).append(arg)
                into = into if many else None
            elif name in self.options() or name.split(".")[0] in self.options():
                own.append(arg)
                nargs = self.options().get(name, self.options()[name.split(".")[0]]).nargs
                into = own if nargs not in (0, "?") and not eq else None
                many = nargs in ("+", "*")
            elif name.startswith("--"):
                extra.append(arg)
                into, many = (None if eq else extra), False
            else:
                raise UserError(f"unknown option '{name}' (see {self.prog} --help)")
        return self.parse(own), extra + argv[end:]


def option_keys(parser: ArgumentParser) -> list[str]:
    """A parser's keys (``batch_size``), without help, print_config and config."""
    names = (o[2:] for a in parser._actions for o in a.option_strings if o.startswith("--"))
    return [n for n in names if n not in SKIPPED and not n.endswith("+")]


def other_command(line: str, command: str) -> str | None:
    """``--quantize is an option of mlcycle export, not of mlcycle evaluate`` for an unknown
    option another command has (an error path only)."""
    from mlcycle.commands.cli import COMMANDS
    from mlcycle.training import cache

    if not line.startswith(("unknown option", "unknown config key")):
        return None
    key = line.split("'")[1].lstrip("-")
    # The data tools' parsers are train.py's kind: building one imports Lightning (seconds),
    # so each command's keys are kept in the start-up cache, current while the sources and the
    # installed distributions (plugins' kinds of data included) are unchanged.
    cached = cache.load().get("command_keys") or {}
    built: dict[str, list[str]] = {}
    found = None
    for name, module, _ in COMMANDS:
        if name == command or module in ("train", "predict"):
            continue
        keys = cached.get(module)
        if keys is None:
            keys = built[module] = command_keys(module)
        if key in keys:
            found = f"--{key} is an option of mlcycle {name}, not of mlcycle {command}"
            break
    if built:
        cache.update(command_keys={**cached, **built})
    return found


def command_keys(module: str) -> list[str]:
    """The keys of ``mlcycle.commands.<module>``'s parser (none without one)."""
    build = getattr(importlib.import_module(f"mlcycle.commands.{module}"), "parser", None)
    return [] if build is None else option_keys(build())


def parse_data(
    build: Callable[[], ArgumentParser], argv: list[str] | None, command: str
) -> tuple[ArgumentParser, Namespace]:
    """The parser ``build`` makes for a data tool (train.py's kind:
    :func:`mlcycle.quality.config.data_parser`) and what it parsed: either spelling of its
    options, the command a key belongs to; ``--help`` from the start-up cache, as train.py's
    (the parser imports Lightning)."""
    from mlcycle.training.precheck import cached_help, is_help

    argv = list(sys.argv[1:] if argv is None else argv)
    if is_help(argv):
        with cached_help(argv):
            build().parse_args(argv)
    from mlcycle.quality.config import parse

    parser = build()
    try:
        return parser, parse(parser, either_spelling(argv, parser._option_string_actions))
    except UserError as exc:
        raise UserError(other_command(str(exc), command) or str(exc)) from exc


def completion_script(shell: str) -> str | None:
    """A completion script of every command and its options (shtab through jsonargparse), or
    None without shtab. It builds every parser: seconds, once (write it to a file)."""
    from importlib.util import find_spec

    if find_spec("shtab") is None:
        return None
    from jsonargparse._completions import get_shtab_script

    from mlcycle.commands.cli import COMMANDS

    top = ArgumentParser(prog="mlcycle")
    commands = top.add_subcommands(required=True, dest="command")
    for name, module, text in COMMANDS:
        build = getattr(importlib.import_module(f"mlcycle.commands.{module}"), "parser", None)
        built = build() if build else CommandParser(name, text)  # train, predict: their own
        commands.add_subcommand(name, built, help=text)
    return get_shtab_script(top, shell)
