"""train.py's keys and their types as JSON (kept in the start-up cache), and a jsonargparse
parser rebuilt from them that validates a command line without importing Lightning.

A schema holds every key of the parser (``dests``, the candidates for ``did you mean``), each
plain argument (``args``: the top level's and ``trainer``'s), and the arguments of each class
given for ``model``, ``data`` and ``objective`` (``classes``, by class path). An argument is
``{"name", "type", "default"}`` (``required``, ``nargs`` and ``const`` where it has them); its
type is JSON where it is built from int, float, bool, str, None and Literal (``Optional[int]``
-> ``["int", "null"]``, a Literal -> ``[{"one of": [...]}]``) and null for any other type.
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
import types
from functools import reduce
from operator import or_
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from jsonargparse import ActionConfigFile, ArgumentParser, Namespace, get_loader, set_loader

DEFAULT_MODEL = "mlcycle.tasks.ClassificationTask"
DEFAULT_DATA = "mlcycle.data.ImageClassificationData"
OBJECTIVE = "mlcycle.core.objective.Objective"
# Keys whose value is a class: their arguments are those of the class given.
GROUPS = {"model": DEFAULT_MODEL, "data": DEFAULT_DATA, "objective": OBJECTIVE}
STAND_INS = "mlcycle.training.stand_ins"  # a module made at run time: a class per cached class
_NAMES = {"int": int, "float": float, "bool": bool, "str": str, "null": type(None)}


def _type_json(typehint: Any) -> list[Any] | None:
    """A type built from int, float, bool, str, None and Literal as JSON; None for any other."""
    if typehint is type(None) or typehint is None:
        return ["null"]
    if typehint in (int, float, bool, str):
        return [typehint.__name__]
    if get_origin(typehint) is Literal:
        values = list(get_args(typehint))
        return (
            [{"one of": values}] if all(isinstance(v, str | int | float) for v in values) else None
        )
    if get_origin(typehint) is Union or isinstance(typehint, types.UnionType):
        parts = [_type_json(a) for a in get_args(typehint)]
        return None if None in parts else [a for p in parts for a in p]
    return None


def _typehint(alternatives: list[Any] | None) -> Any:
    """The type :func:`_type_json` wrote (``|`` keeps the order given); ``Any`` for null."""
    if not alternatives:
        return Any
    kinds = [
        Literal[tuple(a["one of"])] if isinstance(a, dict) else _NAMES[a] for a in alternatives
    ]
    return reduce(or_, kinds)


def _argument(action: Any, name: str) -> dict[str, Any]:
    """A parser argument as the schema keeps it (``required``: also one whose default JSON
    cannot hold; the stand-ins take any value for it)."""
    entry = {"name": name, "type": _type_json(getattr(action, "_typehint", Any))}
    try:
        entry["default"] = json.loads(json.dumps(action.default))
    except (TypeError, ValueError):
        entry["required"] = True
    if action.required:
        entry["required"] = True
    if action.nargs == "?":
        entry.update(nargs="?", const=action.const)
    return entry


def _class_arguments(path: str) -> list[dict[str, Any]] | None:
    """The arguments jsonargparse reads for the class at ``path`` (one with arguments of its own
    is a nested key: any value); None when it cannot be read."""
    module, _, name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
        parser = ArgumentParser(exit_on_error=False)
        parser.add_class_arguments(cls, fail_untyped=False, sub_configs=True)
    except Exception:  # a class that cannot be read this way is left to the full parser
        return None
    found: dict[str, dict[str, Any]] = {}
    for action in parser._actions:
        name, _, rest = action.dest.partition(".")
        if name in ("help", "config") or action.dest.endswith(".help") or name in found:
            continue
        found[name] = {"name": name, "type": None} if rest else _argument(action, name)
    return list(found.values())


def describe(parser: Any, classes: dict[str, dict], linked: list[str]) -> dict[str, Any]:
    """The schema of ``parser`` with the arguments of ``classes`` (``{group: {path: arguments}}``;
    None: read here; a class that cannot be read is left out)."""
    read = {
        g: {p: _class_arguments(p) if a is None else a for p, a in paths.items()}
        for g, paths in classes.items()
    }
    return {
        "dests": [a.dest for a in parser._actions if a.dest and a.dest != "help"],
        "args": [
            _argument(a, a.dest)
            for a in parser._actions
            if hasattr(a, "_typehint") and not a.dest.endswith(".help") and a.dest not in GROUPS
        ],
        "classes": {g: {p: a for p, a in c.items() if a is not None} for g, c in read.items()},
        "defaults": dict(GROUPS),
        "linked": list(linked),
    }


def _stand_in(module: types.ModuleType, name: str, base: type, params: list[dict]) -> type:
    """A class in ``module`` whose ``__init__`` takes ``params`` by keyword and does nothing."""

    def __init__(self: Any, **kwargs: Any) -> None:
        pass

    keyword = inspect.Parameter.KEYWORD_ONLY
    signature = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)]
    signature += [
        inspect.Parameter(p["name"], keyword, default=p.get("default"), annotation=_type(p))
        for p in params
    ]
    __init__.__signature__ = inspect.Signature(signature)  # type: ignore[attr-defined]
    cls = type(name, (base,), {"__init__": __init__, "__module__": module.__name__})
    setattr(module, name, cls)
    return cls


def _type(argument: dict[str, Any]) -> Any:
    return Any if argument.get("required") else _typehint(argument["type"])


def rebuild(schema: dict[str, Any]) -> tuple[ArgumentParser, dict[str, str]]:
    """A parser with the schema's keys and types, and a stand-in per class (a subclass of its
    group's stand-in base, taking the cached arguments). Returns it and ``{class path: stand-in
    path}``: the command line and the files are to name the stand-ins (:func:`swap`)."""
    module = sys.modules[STAND_INS] = types.ModuleType(STAND_INS)
    stand_ins: dict[str, str] = {}
    set_loader(STAND_INS, lambda text: swap(get_loader("yaml")(text), stand_ins), (yaml.YAMLError,))
    parser = ArgumentParser(exit_on_error=False, parser_mode=STAND_INS, allow_abbrev=False)
    parser.add_argument("-c", "--config", action=ActionConfigFile)
    groups: dict[str, list[dict]] = {}  # trainer: its keys, as the arguments of a stand-in
    for p in schema["args"]:
        group, _, name = p["name"].rpartition(".")
        if group:
            groups.setdefault(group, []).append({**p, "name": name})
            continue
        extra = {"nargs": "?", "const": p["const"]} if p.get("nargs") else {}
        parser.add_argument(f"--{name}", type=_type(p), default=p.get("default"), **extra)
    for group, params in groups.items():
        stand_in = _stand_in(module, group.title(), object, params)
        parser.add_class_arguments(stand_in, group, fail_untyped=False, sub_configs=True)
    for group, classes in schema["classes"].items():
        base = _stand_in(module, f"{group.title()}Base", object, [])
        for path, params in classes.items():
            name = f"C{len(stand_ins)}"
            stand_ins[path] = f"{STAND_INS}.{_stand_in(module, name, base, params).__name__}"
        parser.add_argument(f"--{group}", type=base | None, default=None)
        parser.set_defaults({group: {"class_path": stand_ins[schema["defaults"][group]]}})
    return parser, stand_ins


def swap(value: Any, names: dict[str, str]) -> Any:
    """``value`` with every string that is a key of ``names`` replaced by its value (in place in
    a Namespace)."""
    if isinstance(value, str):
        return names.get(value, value)
    if isinstance(value, Namespace):
        for key, item in vars(value).items():
            setattr(value, key, swap(item, names))
    elif isinstance(value, dict):
        return {k: swap(v, names) for k, v in value.items()}
    elif isinstance(value, list):
        return [swap(v, names) for v in value]
    return value


def quote_plain_strings(args: list[str]) -> tuple[list[str], dict[str, str]]:
    """Command-line values that YAML would read as a mapping or list although they are not
    written as one (``SELECT ... WHERE b = 'x: y'``) are passed on quoted; returns the new
    arguments and ``{quoted: original}`` to undo the quoting where it survives parsing.

    jsonargparse reads a value as YAML; inside a ``class_path`` group that turns such a SQL query
    into a dict and fails. A value meant as a mapping or list is written ``{...}`` / ``[...]``.
    """
    out, quoted = [], {}
    for arg in args:
        key, sep, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
        if arg.startswith("--") and not sep:
            out.append(arg)
            continue
        try:
            loaded = yaml.safe_load(value)
        except yaml.YAMLError:
            loaded = None
        if isinstance(loaded, dict | list) and not value.lstrip().startswith(("{", "[")):
            quoted[json.dumps(value)] = value
            value = json.dumps(value)
        out.append(f"{key}{sep}{value}")
    return out, quoted
