"""train.py's argument parser: one-line errors with the closest key, integer limits kept as
integers, values such as ``WHERE b = 'x: y'`` kept as strings. The quality tools use it too."""

from __future__ import annotations

import re
import sys
from functools import reduce
from operator import or_
from typing import Any, Literal, Union, get_args, get_origin

from jsonargparse import Namespace
from lightning.pytorch.cli import LightningArgumentParser

from mlcycle.core.errors import fail
from mlcycle.core.messages import explain
from mlcycle.data.stream_kinds import use_stream_reader
from mlcycle.tasks.base import Task
from mlcycle.training import cache
from mlcycle.training.schema import (
    DEFAULT_DATA,
    DEFAULT_MODEL,
    GROUPS,
    OBJECTIVE,
    describe,
    quote_plain_strings,
    swap,
)

__all__ = ["DEFAULT_DATA", "DEFAULT_MODEL", "OBJECTIVE", "MLCycleParser", "one_line_error"]

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


def remember_key_schema(parser: LightningArgumentParser, named: dict[str, set[str]]) -> None:
    """Keep train.py's key schema in the start-up cache, for
    :func:`mlcycle.training.precheck.check`: the parser's keys, and the arguments of each group's
    default class and of the classes a parse ``named`` (each class read once)."""
    schema = cache.load().get("schema") or {}
    known = schema.get("classes", {})
    wanted = {g: {default, *named.get(g, ())} for g, default in GROUPS.items()}
    if schema and all(p in known.get(g, {}) for g, paths in wanted.items() for p in paths):
        return
    classes = {g: {**dict.fromkeys(wanted[g]), **known.get(g, {})} for g in GROUPS}  # None: read
    schema = describe(parser, classes, list(Task.linked))
    if all(GROUPS[g] in schema["classes"][g] for g in GROUPS):  # else no message is worded
        cache.update(schema=schema)


def named_classes(message: str) -> dict[str, set[str]]:
    """``{group: {class path}}`` for the classes a jsonargparse error names."""
    found = re.findall(r'Parser key "(\w+)":.*?given class_path \'([\w.]+)\'', message, re.S)
    return {group: {path} for group, path in found if group in GROUPS}


def classes_in(cfg: Namespace) -> dict[str, set[str]]:
    """``{group: {class path}}`` for the classes a parsed config names."""
    chosen = {g: getattr(cfg.get(g), "class_path", None) for g in GROUPS}
    return {g: {path} for g, path in chosen.items() if isinstance(path, str)}


def known_classes(message: str) -> dict[str, list[str]]:
    """``{group: [class path]}`` a misspelled class path is matched against: the imported
    subclasses of the group's base class, and the classes of the module the error names."""
    from jsonargparse._typehints import get_all_subclass_paths
    from lightning.pytorch import LightningDataModule, LightningModule

    found = {}
    for group, base in (("model", LightningModule), ("data", LightningDataModule)):
        paths = set(get_all_subclass_paths(base)) | {GROUPS[group]}
        for module in re.findall(rf"Parser key \"{group}\":.*?module '([\w.]+)' has no", message):
            imported = sys.modules.get(module)
            for name, value in vars(imported or object()).items():
                if isinstance(value, type) and issubclass(value, base) and not name.startswith("_"):
                    paths.add(f"{module}.{name}")
        found[group] = sorted(paths)
    return found


def one_line_error(parser: LightningArgumentParser, message: str) -> str:
    """Condense a jsonargparse error to one line naming the key, with the closest valid key."""
    named = named_classes(message)
    classes = {g: dict.fromkeys({GROUPS[g], *named.get(g, ())}) for g in GROUPS}
    schema = describe(parser, classes, list(Task.linked))
    return explain({**schema, "known_classes": known_classes(message)}, message)[1]


class MLCycleParser(LightningArgumentParser):
    """Errors as one ``error:`` line and exit code 2, without the usage text. A config with
    ``data.source: stream`` gets the data class its stream's ``stream.json`` names (train.py,
    the data tools and the stages that load a run's config.yaml all parse here). ``named``: the
    classes the last parse named (``{group: {class path}}``: its config's, or its error's), for
    the start-up check."""

    named: dict[str, set[str]] = {}

    def parse_args(self, args: Any = None, *rest: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        args, quoted = quote_plain_strings(list(sys.argv[1:] if args is None else args))
        parsed = super().parse_args(args, *rest, **kwargs)
        use_stream_reader(parsed)  # data.source: stream -> the reader its stream.json names
        self.named = classes_in(parsed)
        return swap(parsed, quoted) if quoted else parsed

    def dump(self, cfg: Namespace, *args: Any, **kwargs: Any) -> str:
        self.named = classes_in(cfg)  # --print_config dumps the parsed config, then exits
        return super().dump(cfg, *args, **kwargs)

    def error(self, message: str, ex: Exception | None = None):  # type: ignore[override]
        if not self.exit_on_error:
            return super().error(message, ex)
        self.named = named_classes(message)
        fail(one_line_error(self, message), 2)
