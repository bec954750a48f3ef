"""Typed keys for the selection YAML files (compare, tune) and the commands' options: a
jsonargparse error worded as one line naming the key, with the closest valid key
(:func:`mlcycle.core.messages.closest_name` and its usual words, as train.py's errors)."""

from __future__ import annotations

import ast
import dataclasses
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlcycle.core.errors import UserError
from mlcycle.core.messages import SYNONYMS, closest_name, expected_text
from mlcycle.core.yaml_files import read_mapping

_UNKNOWN = (
    r"unrecognized arguments:\s*(-[\w.\-+]+)",
    r"Option '([\w.\-]+)' is not accepted",
    r'Key "([\w.\-]+)" is not expected',
    r"Group '([\w.]+)' does not accept option '([\w.\-]+)'",
)
_TYPE = r"Expected a (.+?)\. Got value: (.+)$|Subtypes: \[(.*?)\] Errors:.*Given value: (.+)$"
_WORDS = {"int": "int", "float": "float", "bool": "bool", "str": "str", "NoneType": "null"}


def string_list(value: Any, key: str, where: str) -> list[str]:
    """``value`` as a list of strings (one string is a list of one); None is empty."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UserError(f"{where}: '{key}' must be a string or a list of strings")
    return list(value)


def check_keys(keys: set[str], allowed: set[str], where: str) -> None:
    """Refuse the first unknown key, naming the valid ones."""
    extra = sorted(keys - allowed)
    if extra:
        raise UserError(
            f"{where}: unknown key '{extra[0]}'; valid keys are {', '.join(sorted(allowed))}"
        )


def closest_key(key: str, keys: list[str]) -> str | None:
    """The key in ``keys`` closest to ``key``: a usual word first (``bs`` -> ``batch_size``),
    else the closest spelling."""
    known = sorted(set(keys) - {key})
    leaf = key.rsplit(".", 1)[-1].replace("-", "_").lower()
    synonym = SYNONYMS.get(leaf, "").rsplit(".", 1)[-1]
    prefix = key.rpartition(".")[0]
    wanted = f"{prefix}.{synonym}" if prefix else synonym
    return wanted if synonym and wanted in known else closest_name(key, known)


def _fields(path: str) -> list[str]:
    """The field names of the dataclass ``path`` names (already imported by the parser)."""
    module, _, name = path.rpartition(".")
    cls = getattr(sys.modules.get(module), name, None)
    return [f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls) else []


def _expected(kinds: str) -> str:
    """``<class 'int'>, <class 'NoneType'>`` -> ``an integer or null``."""
    alternatives: list[Any] = []
    for kind in re.findall(r"<class '([\w.]+)'>|typing\.Literal\[(.*?)\]|\b(dict|list)\[", kinds):
        if kind[2]:
            alternatives.append("a mapping" if kind[2] == "dict" else "a list")
        elif kind[1]:
            alternatives.append({"one of": list(ast.literal_eval(f"[{kind[1]}]"))})
        else:
            alternatives.append(_WORDS.get(kind[0], kind[0].rsplit(".", 1)[-1]))
    return expected_text(alternatives) if alternatives else kinds


def key_error(message: str, keys: list[str]) -> str:
    """A jsonargparse error as one line: an unknown key with the closest of ``keys`` (or of the
    fields of the dataclass the error names), a value of the wrong type, a missing key."""
    text = " ".join(message.split())
    group = re.match(r'Parser key "([\w.]+)"(?: element \d+)?: ', text)
    nested = re.search(r"Problem with given class_path '([\w.]+)': (.*)$", text)
    prefix, rest = (group.group(1), text[group.end() :]) if group else ("", text)
    if nested:
        inner = re.match(r'Parser key "([\w.]+)": ', nested.group(2))
        keys = [f"{prefix}.{f}" for f in _fields(nested.group(1))]
        rest = nested.group(2)[inner.end() :] if inner else nested.group(2)
        prefix = f"{prefix}.{inner.group(1)}" if inner else prefix
    for pattern in _UNKNOWN:
        found = re.search(pattern, rest)
        if found:
            return _unknown(".".join(g for g in found.groups() if g), prefix, nested, keys)
    missing = re.search(r"the following arguments are required: (.+)$", rest)
    if missing:
        names = [n.strip() for n in missing.group(1).split(",")]
        return f"'{prefix}.{names[0]}' is required" if prefix else f"--{names[0]} is required"
    wrong = re.search(_TYPE, rest)
    if wrong and prefix:
        kinds, value = (wrong.group(1), wrong.group(2)) if wrong.group(1) else wrong.group(3, 4)
        return f"key '{prefix}': expected {_expected(kinds)}, got '{value}'"
    text = re.sub(r"<class '([\w.]+)'>", r"\1", f"key '{prefix}': {rest}" if prefix else text)
    return text if len(text) <= 300 else text[:300] + " ..."


def _unknown(name: str, prefix: str, nested: Any, keys: list[str]) -> str:
    option = name.startswith("-")
    key = name.lstrip("-").split("=")[0]
    if prefix and (nested or not key.startswith(prefix + ".")):
        key = f"{prefix}.{key}"
    close = closest_key(key, keys)
    if option:
        hint = f"; did you mean '--{close}'?" if close else ""
        return f"unknown option '--{key}'{hint}"
    hint = f"; did you mean '{close}'?" if close else ""
    return f"unknown key '{key}'{hint}"


def parse_yaml_keys(path: Path, what: str, add_arguments: Callable[[Any], None]) -> Any:
    """The typed keys of the YAML file ``path`` (a ``what``: "comparison config"), as the
    command's own parser would read its ``--config``; every message names the key at fault."""
    from argparse import ArgumentError

    from jsonargparse import ActionConfigFile, ArgumentParser

    read_mapping(path, what)  # missing, not YAML, not a mapping: one line
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--config", action=ActionConfigFile)
    add_arguments(parser)
    try:
        return parser.parse_args(["--config", str(path)])
    except ArgumentError as exc:
        keys = [a.dest for a in parser._actions]
        raise UserError(f"{path}: {key_error(str(exc), keys)}") from exc
