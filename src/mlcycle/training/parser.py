"""train.py's argument parser: one-line errors with the closest key, integer limits kept as
integers, values such as ``WHERE b = 'x: y'`` kept as strings. The quality tools use it too."""

from __future__ import annotations

import inspect
import json
import re
import sys
import types
from functools import reduce
from operator import or_
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from jsonargparse import Namespace
from lightning.pytorch.cli import LightningArgumentParser

from mlcycle.core.errors import fail
from mlcycle.tasks.base import Task
from mlcycle.training import cache, precheck
from mlcycle.training.precheck import closest_key, type_message, unknown_key_message

DEFAULT_MODEL = "mlcycle.tasks.ClassificationTask"
DEFAULT_DATA = "mlcycle.data.ImageClassificationData"
OBJECTIVE = "mlcycle.core.objective.Objective"
# Keys whose value is a class (or dataclass): their errors name the key inside it.
GROUPS = {"model": DEFAULT_MODEL, "data": DEFAULT_DATA, "objective": OBJECTIVE}
# Trainer keys where an int means a number of batches (or epochs) and a float a fraction.
INTEGER_LIMITS = (
    "limit_train_batches",
    "limit_val_batches",
    "limit_test_batches",
    "limit_predict_batches",
    "overfit_batches",
    "val_check_interval",
    "check_val_every_n_epoch",
)
FINDER = bool | Literal["apply"]


def int_before_float(typehint: Any) -> Any:
    """``typehint`` with ``int`` tried before ``float`` when it is a union of both.

    Python's typing caches unions and treats ``Union[float, int]`` and ``Union[int, float]`` as
    equal, so ``Trainer.__init__``'s ``Optional[Union[int, float]]`` comes back as
    ``Union[float, int, None]`` once Lightning Fabric has spelled it that way. jsonargparse
    tries the subtypes in order, and ``float`` accepts ``1`` as ``1.0``: "one batch" became
    "all batches". ``|`` builds an uncached union that keeps the order given here.
    """
    args = get_args(typehint)
    if get_origin(typehint) is not Union and not isinstance(typehint, type(int | float)):
        return typehint
    if int not in args or float not in args:
        return typehint
    rest = [a for a in args if a not in (int, float)]
    return reduce(or_, [int, float, *rest])


def keep_integer_limits(parser: LightningArgumentParser) -> None:
    """Make the ``trainer`` keys in ``INTEGER_LIMITS`` keep an int as an int (CLI and YAML)."""
    for action in parser._actions:
        if action.dest.removeprefix("trainer.") in INTEGER_LIMITS and hasattr(action, "_typehint"):
            action._typehint = int_before_float(action._typehint)


def accept_auto_precision(parser: LightningArgumentParser) -> None:
    """Let ``trainer.precision`` be ``auto`` too (resolved by the CLI before the Trainer is built:
    :func:`mlcycle.core.device.resolve_precision`); every Lightning value still parses."""
    for action in parser._actions:
        if action.dest == "trainer.precision" and hasattr(action, "_typehint"):
            action._typehint = Literal["auto"] | action._typehint
            action.help = (
                "'auto': bf16-mixed on a CUDA GPU with bf16, 16-mixed on an older one, 32 on the "
                "CPU; or any Lightning precision."
            )


def type_alternatives(typehint: Any) -> list[Any] | None:
    """A type built from int, float, bool, str, None and Literal as JSON for the start-up cache
    (``Optional[int]`` -> ``["int", "null"]``, a Literal -> ``{"one of": [...]}``); None for any
    other type."""
    if typehint is type(None) or typehint is None:
        return ["null"]
    if typehint in (int, float, bool, str):
        return [typehint.__name__]
    if get_origin(typehint) is Literal:
        values = list(get_args(typehint))
        if all(isinstance(v, str | int | float) for v in values):
            return [{"one of": values}]
        return None
    if get_origin(typehint) is Union or isinstance(typehint, types.UnionType):
        parts = [type_alternatives(a) for a in get_args(typehint)]
        if any(p is None for p in parts):
            return None
        return [a for p in parts for a in p]
    return None


def _action_types(actions: list[Any]) -> dict[str, list[Any]]:
    described = {a.dest: type_alternatives(getattr(a, "_typehint", Any)) for a in actions}
    return {dest: alternatives for dest, alternatives in described.items() if alternatives}


def _class_keys(group: str, class_path: str) -> list[str]:
    """Valid ``group.<arg>`` keys of the class at ``class_path``."""
    import importlib

    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return []
    linked = Task.linked if group == "model" else ()
    keys = [
        f"{group}.{arg}"
        for c in cls.__mro__  # a task's own arguments, then those it passes on to Task's
        if "__init__" in vars(c)
        for arg, p in inspect.signature(c.__init__).parameters.items()
        if arg != "self" and arg not in linked and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    return list(dict.fromkeys(keys))


def _closest_key(parser: LightningArgumentParser, key: str, class_path: str | None) -> str | None:
    candidates = [a.dest for a in parser._actions if a.dest and a.dest != "help"]
    for group, default in GROUPS.items():
        chosen = class_path if class_path and key.startswith(group + ".") else default
        candidates += _class_keys(group, chosen)
    return closest_key(key, candidates)


def _class_entry(group: str, class_path: str) -> dict[str, list[str]] | None:
    """What the start-up checks need of a class: the argument names its parser accepts, and
    the keys the closest-key hint chooses from (as :func:`_closest_key` does)."""
    import importlib

    from jsonargparse import ArgumentParser

    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
        parser = ArgumentParser(exit_on_error=False)
        parser.add_class_arguments(cls, fail_untyped=False, sub_configs=True)
    except Exception:  # a class that cannot be read this way is left to the full parser
        return None
    keys = _class_keys(group, class_path)
    accepts = {a.dest.split(".")[0] for a in parser._actions if a.dest not in ("help", "config")}
    accepts |= {k.split(".", 1)[1] for k in keys} | set(Task.linked if group == "model" else ())
    return {"accepts": sorted(accepts), "keys": keys, "types": _action_types(parser._actions)}


def remember_key_schema(parser: LightningArgumentParser, argv: list[str]) -> None:
    """Keep the keys train.py accepts in the start-up cache, for
    :func:`mlcycle.training.precheck.check`: the parser's, and those of the default classes
    and of the classes ``argv`` names by their full class_path (each read once)."""
    schema = cache.load().get("schema") or {}
    wanted = {group: {default} for group, default in GROUPS.items()}
    for group, paths in precheck.class_paths(argv).items():
        wanted[group] |= paths
    classes = schema.get("classes", {g: {} for g in GROUPS})
    missing = [(g, p) for g, paths in wanted.items() for p in paths if p not in classes[g]]
    if schema and not missing:
        return
    for group, path in missing:
        entry = _class_entry(group, path)
        if entry is not None:
            classes[group][path] = entry
    if any(GROUPS[g] not in classes[g] for g in GROUPS):
        return  # without the defaults' keys no message can be worded as the parser's
    dests = [a.dest for a in parser._actions if a.dest]
    schema = {
        "dests": [d for d in dests if d != "help"],
        "top": sorted({d.split(".")[0] for d in dests}),
        "trainer": sorted({d.split(".")[1] for d in dests if d.startswith("trainer.")}),
        "defaults": dict(GROUPS),
        "classes": classes,
        "types": _action_types(parser._actions),
    }
    cache.update(schema=schema)


def one_line_error(parser: LightningArgumentParser, message: str) -> str:
    """Condense a jsonargparse error to one line naming the key, with the closest valid key."""
    text = " ".join(message.split())
    group = re.match(r'Parser key "([\w.]+)"', text)
    prefix = f"{group.group(1)}." if group and group.group(1) in GROUPS else ""
    unknown = re.findall(r"Option '([\w.\-]+)' is not accepted", text)
    unknown += [
        m.split("=")[0] for m in re.findall(r"(?i)unrecognized arguments:\s*--?([\w.\-=]+)", text)
    ]
    unknown += re.findall(r'Key "([\w.\-]+)" is not expected', text)
    # An unknown trainer key in a config file.
    unknown += [
        f"{g}.{k}"
        for g, k in re.findall(r"Group '([\w.]+)' does not accept option '([\w.\-]+)'", text)
    ]
    if unknown:
        key = prefix + unknown[0].replace(".init_args.", ".")
        chosen = re.search(r"given class_path '([\w.]+)'", text)
        close = _closest_key(parser, key, chosen.group(1) if chosen else None)
        return unknown_key_message(key, close)
    wrong_type = _type_error(parser, text, prefix)
    if wrong_type:
        return wrong_type
    nested = re.search(
        r"Problem with given class_path '[\w.]+': Parser key \"([\w.]+)\": "
        r"Does not validate against any of the Union subtypes Subtypes: \[(.*?)\] Errors:.*?Given value: (.*?) - ",
        text,
    )
    if nested and prefix:
        kinds = re.sub(r"<class '([\w.]+)'>", r"\1", nested.group(2)).replace("NoneType", "null")
        return f"config key '{prefix}{nested.group(1)}': expected one of [{kinds}], got '{nested.group(3)}'"
    union = re.match(
        r'Parser key "([\w.]+)": Does not validate against any of the Union subtypes Subtypes: \[(.*?)\]',
        text,
    )
    if union and not prefix:
        value = re.search(r"Given value: (.*)$", text)
        got = f", got '{value.group(1)}'" if value else ""
        kinds = re.sub(r"<class '([\w.]+)'>", r"\1", union.group(2)).replace("NoneType", "null")
        return f"config key '{union.group(1)}': expected one of [{kinds}]{got}"
    bad = re.search(
        r"Parser key \"([\w.]+)\": (.+?)(?: - Expected a <class 'NoneType'>|$)",
        text.split("Errors:")[-1],
    )
    if bad:
        key = (
            bad.group(1) if not prefix or bad.group(1).startswith(prefix) else prefix + bad.group(1)
        )
        detail = re.sub(r"<class '([\w.]+)'>", r"\1", bad.group(2)).rstrip(" -")
        return f"config key '{key}': {detail[:300]}"
    text = re.sub(r"<class '([\w.]+)'>", r"\1", text)
    return text if len(text) <= 400 else text[:400] + " ..."


def _type_error(parser: LightningArgumentParser, text: str, prefix: str) -> str | None:
    """A value of the wrong type, worded from the key's type as the start-up check words it
    (:func:`mlcycle.training.precheck.type_message`); None when the type is not a plain one."""
    value_at = r"(?:Expected a .*?\. Got value|Does not validate against any of the Union subtypes .*? Given value): (.+?)(?: - |$)"
    nested = re.search(
        rf"Problem with given class_path '([\w.]+)': Parser key \"(\w+)\": {value_at}", text
    )
    if nested and prefix:
        group = prefix.rstrip(".")
        entry = _class_entry(group, nested.group(1)) or {}
        alternatives = entry.get("types", {}).get(nested.group(2))
        key, value = f"{group}.{nested.group(2)}", nested.group(3)
    else:
        top = re.match(rf'Parser key "([\w.]+)": {value_at}', text)
        if not top or prefix:
            return None
        key, value = top.group(1), top.group(2)
        alternatives = _action_types([a for a in parser._actions if a.dest == key]).get(key)
    return type_message(key, alternatives, value) if alternatives else None


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


def _unquote(node: Any, quoted: dict[str, str]) -> Any:
    """``node`` with every string that is a key of ``quoted`` replaced by its original."""
    if isinstance(node, str):
        return quoted.get(node, node)
    if isinstance(node, Namespace):
        for key, value in vars(node).items():
            setattr(node, key, _unquote(value, quoted))
    elif isinstance(node, dict):
        return {k: _unquote(v, quoted) for k, v in node.items()}
    elif isinstance(node, list):
        return [_unquote(v, quoted) for v in node]
    return node


class MLCycleParser(LightningArgumentParser):
    """Errors as one ``error:`` line and exit code 2, without the usage text."""

    def parse_args(self, args: Any = None, *rest: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        args, quoted = quote_plain_strings(list(sys.argv[1:] if args is None else args))
        parsed = super().parse_args(args, *rest, **kwargs)
        return _unquote(parsed, quoted) if quoted else parsed

    def error(self, message: str, ex: Exception | None = None):  # type: ignore[override]
        if not self.exit_on_error:
            return super().error(message, ex)
        fail(one_line_error(self, message), 2)
