"""What train.py can answer before importing Lightning (seconds of imports): ``--help`` from
the start-up cache (:mod:`mlcycle.training.cache`), and the config errors that are certain
from the files and the cached key schema:

* a ``--config`` file that does not exist, or is not valid YAML;
* an unknown top-level section, or an unknown key in ``trainer``, ``model``, ``data`` or
  ``objective`` (for a ``model``/``data`` class named by its full ``class_path``);
* a word where a number, a boolean or one of a fixed set of values belongs
  (``--trainer.max_epochs=abc``, ``lr: fast``, ``--model.scheduler=cosinee``), when it is the
  only such mistake and the key's type is built from int, float, bool, str, None and Literal.

Everything else goes on to the full parser, which has the last word: other values of the wrong
type, a class named by a short name, a config given inline or in a nested file. A check here
only ever rejects what the full parser rejects too, with the same message
(:func:`mlcycle.training.parser.one_line_error`; a YAML syntax error also names the file), so a
cold and a warm cache answer alike.
Where several things are wrong, the one named may differ from the full parser's pick.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import yaml

from mlcycle.training import cache

GROUPS = ("model", "data", "objective")  # values checked against a class's arguments
HELP_TEXTS = 20  # the help texts kept (one per command line asking for help), newest last
META = ("class_path", "init_args", "dict_kwargs", "__path__", "help")  # not arguments
_HELP = re.compile(r"--[\w.]+\.help(=.*)?")
_PLAIN = re.compile(r"[\w\-]+")
_CLASS_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")
# Syntax errors only: a constructor error may be one the full parser's loader does not make.
_SYNTAX = (yaml.scanner.ScannerError, yaml.parser.ParserError, yaml.composer.ComposerError)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # jsonargparse's loader builds on it


def closest_key(key: str, candidates: list[str]) -> str | None:
    """The valid key closest to ``key`` (whole key, else its last part), or None."""
    candidates = sorted({c.replace(".init_args.", ".") for c in candidates} - {key})
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    if not close:
        leaf = {c.rsplit(".", 1)[-1]: c for c in candidates}
        close = [
            leaf[m] for m in difflib.get_close_matches(key.rsplit(".", 1)[-1], list(leaf), n=1)
        ]
    return close[0] if close else None


def unknown_key_message(key: str, close: str | None) -> str:
    hint = f"; did you mean '{close}'?" if close else ""
    return f"unknown config key '{key}'{hint} (--help lists every key)"


_WORD = re.compile(r"[A-Za-z_][\w\-]*")
# Words YAML reads as null or a boolean, and float's own words: a type may take them.
_SPECIAL = {"null", "none", "~", "true", "false", "yes", "no", "on", "off", "y", "n"}
_NUMBER_WORDS = {"inf", "infinity", "nan"}
_WORDS = {"int": "an integer", "float": "a number", "bool": "true/false", "str": "a string"}


def expected_text(alternatives: list[Any]) -> str:
    """``["int", "null"]`` -> ``an integer or null``; a ``{"one of": [...]}`` alternative lists
    its values (a Literal)."""
    values = [v for a in alternatives if isinstance(a, dict) for v in a["one of"]]
    parts = [_WORDS.get(a, a) for a in alternatives if isinstance(a, str)]
    if values:
        shown = ", ".join(f"'{v}'" if isinstance(v, str) else json.dumps(v) for v in values)
        parts.insert(0, f"one of {shown}")
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def type_message(key: str, alternatives: list[Any], value: Any) -> str:
    return f"config key '{key}': expected {expected_text(alternatives)}, got '{value}'"


def rejected(alternatives: list[Any], value: Any) -> bool:
    """Whether every alternative surely refuses ``value``: only plain words are judged (no
    number, no YAML null or boolean), so nothing the full parser accepts is refused here."""
    if not isinstance(value, str) or not _WORD.fullmatch(value) or value.lower() in _SPECIAL:
        return False

    def refuses(alternative: Any) -> bool:
        if isinstance(alternative, dict):
            return value not in [v for v in alternative["one of"] if isinstance(v, str)]
        if alternative in ("int", "float"):
            return value.lower() not in _NUMBER_WORDS
        return alternative in ("bool", "null")

    return bool(alternatives) and all(refuses(a) for a in alternatives)


def is_help(argv: list[str]) -> bool:
    """Whether ``argv`` asks for help (``-h``, ``--help``, ``--model.help ...``)."""
    if any(a.startswith("--print_config") for a in argv):
        return False
    return any(a in ("-h", "--help") or _HELP.fullmatch(a) for a in argv)


def _help_key(argv: list[str]) -> str:
    # The same script and words, the files they name unchanged, the same terminal width: the
    # same text.
    files = []
    for arg in argv:
        path = os.path.abspath(os.path.expanduser(arg.partition("=")[2] or arg))
        if os.path.isfile(path):
            info = os.stat(path)
            files.append([path, info.st_size, info.st_mtime_ns])
    prog = os.path.basename(sys.argv[0])  # the usage line names the script
    key = [prog, argv, shutil.get_terminal_size().columns, files]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()


class _Tee:
    """stdout that keeps a copy of what is written."""

    def __init__(self, stream: Any) -> None:
        self.stream, self.parts = stream, []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return self.stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


@contextmanager
def cached_help(argv: list[str]) -> Iterator[None]:
    """Print the help ``argv`` asks for from the cache and exit 0; else run the body (the full
    parser prints it and exits 0) and keep what it printed for the next call."""
    key = _help_key(argv)
    text = cache.load().get("help", {}).get(key)
    if text is not None:
        sys.stdout.write(text)
        sys.stdout.flush()
        raise SystemExit(0)
    tee = _Tee(sys.stdout)
    sys.stdout = tee
    try:
        yield
    except SystemExit as exc:
        if exc.code in (0, None) and tee.parts:
            texts = {**cache.load().get("help", {}), key: "".join(tee.parts)}
            cache.update(help=dict(list(texts.items())[-HELP_TEXTS:]))
        raise
    finally:
        sys.stdout = tee.stream


class _Unsure(Exception):
    """The arguments are beyond what the checks here read; the full parser decides."""


def check(argv: list[str], schema: dict[str, Any] | None) -> str | None:
    """The first error in ``argv`` that is certain without Lightning, as the full parser words
    it, or None. Without a ``schema`` only the config files are checked."""
    try:
        return _Check(schema).run(argv)
    except _Unsure:
        return None
    except (KeyError, TypeError, AttributeError):  # a cache damaged by hand: the parser decides
        return None


def class_paths(argv: list[str]) -> dict[str, set[str]]:
    """The dotted ``class_path`` values ``argv`` names for ``model`` and ``data``."""
    reader = _Check(None)
    try:
        reader.run(argv)
    except _Unsure:
        pass
    return reader.named


def _options(argv: list[str]) -> list[tuple[str, str | None]]:
    """``(key, value)`` per option, in order: ``--a.b=v``, ``--a.b v``, ``-c FILE``."""
    items: list[tuple[str, str | None]] = []
    for i, arg in enumerate(argv):
        following = argv[i + 1] if i + 1 < len(argv) else None
        if following is not None and following.startswith("--"):
            following = None
        if arg == "--":
            raise _Unsure
        if arg.startswith("--"):
            key, sep, value = arg[2:].partition("=")
            items.append((key, value if sep else following))
        elif arg == "-c":
            items.append(("config", following))
        elif arg.startswith("-c"):
            items.append(("config", arg[2:]))
    return items


def _leaves(key: str, value: Any) -> list[str]:
    """The dotted keys of the leaves under ``key`` (a flattened config)."""
    if not isinstance(value, dict):
        return [key]
    if not value:
        raise _Unsure  # an empty mapping: how it is reported is not worth predicting
    return [leaf for k, v in value.items() for leaf in _leaves(f"{key}.{_name(k)}", v)]


def _name(key: Any) -> str:
    if not isinstance(key, str) or not _PLAIN.fullmatch(key):
        raise _Unsure  # a dotted YAML key is a nested one to jsonargparse
    return key


class _Check:
    def __init__(self, schema: dict[str, Any] | None) -> None:
        self.schema = schema or {}
        defaults = self.schema.get("defaults", {})
        self.classes: dict[str, str | None] = {g: defaults.get(g) for g in GROUPS}
        self.trainer = "trainer" in self.schema  # whether trainer keys can still be checked
        self.named: dict[str, set[str]] = {"model": set(), "data": set()}
        self.unrecognized: list[str] = []  # command-line keys: reported after the others
        # Config-file keys checked once every file is merged: (key, trainer 0 / top level 1, order)
        self.late: list[tuple[str, int, int]] = []
        # The last value given per key: (its group, that group's class then, error or None).
        self.typed: dict[str, tuple[str | None, str | None, str | None]] = {}

    def run(self, argv: list[str]) -> str | None:
        error = self.first_unknown(argv)
        wrong = [message for _, _, message in self.typed.values() if message]
        if wrong and (error or len(wrong) > 1):
            raise _Unsure  # which one the full parser names first is not worth predicting
        if any(g and self.classes[g] != c for g, c, message in self.typed.values() if message):
            raise _Unsure  # the class changed after the value was given
        return error or (wrong[0] if wrong else None)

    def first_unknown(self, argv: list[str]) -> str | None:
        for key, value in _options(argv):
            error = self.option(key, value)
            if error:
                return error
        if self.unrecognized:
            return self.unknown(self.unrecognized[0])
        if self.late:
            # jsonargparse validates the merged config deepest key first; trainer's come first.
            key, _, _ = min(self.late, key=lambda item: (-item[0].count("."), item[1], item[2]))
            return self.unknown(key)
        return None

    def value(self, key: str, value: Any, group: str | None = None) -> None:
        """Note ``value`` for ``key`` (a later one replaces it): wrong when its type surely
        refuses it."""
        if group:
            path = self.classes[group]
            entry = self.schema.get("classes", {}).get(group, {}).get(path) if path else None
            types = (entry or {}).get("types", {})
            name = key.split(".", 1)[1]
        else:
            path, types, name = None, self.schema.get("types", {}), key
        alternatives = types.get(name)
        wrong = alternatives is not None and rejected(alternatives, value)
        message = type_message(key, alternatives, value) if wrong else None
        self.typed[key] = (group, path, message)

    def option(self, key: str, value: str | None) -> str | None:
        top, _, rest = key.partition(".")
        if key == "config":
            if value is None:
                raise _Unsure
            return self.config(value)
        if top in GROUPS:
            if not rest:
                self.set_class(top, value, whole=True)
                return None
            return self.argument(top, rest, value)
        known = self.schema.get("top")
        if top == "trainer" and rest and self.trainer:
            if rest.split(".")[0].rstrip("+") not in self.schema["trainer"]:
                self.unrecognized.append(key)
            elif value is not None:
                self.value(key, value)
        elif top == "trainer" and not rest:
            self.trainer = False  # a file or mapping we do not read
        elif known is not None and top not in known:
            self.unrecognized.append(key)
        elif value is not None and not rest:
            self.value(key, value)
        return None

    def set_class(self, group: str, value: Any, whole: bool = False) -> None:
        """``--model X`` / ``class_path: X``: a class we have keys for, or unchecked."""
        if isinstance(value, str) and _CLASS_PATH.fullmatch(value) and group != "objective":
            self.named[group].add(value)
        classes = self.schema.get("classes", {}).get(group, {})
        known = isinstance(value, str) and value in classes and not (whole and group == "objective")
        self.classes[group] = value if known else None

    def argument(self, group: str, rest: str, value: str | None) -> str | None:
        """``--model.lr=...``: checked when it is given, against the class chosen so far."""
        rest = re.sub(r"^(init_args\.)+", "", rest)
        first = rest.split(".")[0]
        if first == "class_path" and group != "objective":
            self.set_class(group, value)
            return None
        accepts = self.accepts(group)
        if first in META:
            return None
        if accepts is None or first in accepts:
            if value is not None and "." not in rest:
                self.value(f"{group}.{rest}", value, group)
            return None
        return self.unknown(f"{group}.{rest}", self.classes[group])

    def accepts(self, group: str) -> set[str] | None:
        """The argument names of the class chosen for ``group``; None when not known."""
        path = self.classes[group]
        entry = self.schema.get("classes", {}).get(group, {}).get(path) if path else None
        return None if entry is None else set(entry["accepts"])

    def config(self, value: str) -> str | None:
        if "://" in value:
            raise _Unsure  # fsspec paths
        path = os.path.expanduser(value)
        path = path if os.path.isabs(path) else os.path.join(os.getcwd(), path)
        if not os.access(path, os.F_OK):
            try:
                inline = yaml.safe_load(value)
            except yaml.YAMLError:
                raise _Unsure from None
            if isinstance(inline, str):
                return f"config key 'config': File does not exist: {path!r}"
            raise _Unsure  # a config given inline
        if not os.path.isfile(path):
            raise _Unsure
        try:
            with open(path, encoding="utf-8") as stream:
                content = yaml.load(stream, Loader=_LOADER)
        except _SYNTAX as exc:
            return f"Problems parsing config: {exc}"
        except (OSError, ValueError, yaml.YAMLError):
            raise _Unsure from None
        if not isinstance(content, dict):
            raise _Unsure
        return self.sections(content)

    def sections(self, content: dict[Any, Any]) -> str | None:
        known = self.schema.get("top")
        for raw, value in content.items():
            key = _name(raw)
            if key in GROUPS:
                error = self.group(key, value)
                if error:
                    return error
            elif key == "trainer":
                self.trainer_section(value)
            elif key == "config":
                raise _Unsure  # nested config files
            elif known is not None and key not in known:
                self.late += [(leaf, 1, len(self.late)) for leaf in _leaves(key, value)]
            else:
                self.value(key, value)
        return None

    def trainer_section(self, value: Any) -> None:
        if not isinstance(value, dict):
            self.trainer = False
            return
        for raw, item in value.items():
            key = _name(raw)
            if self.trainer and key not in self.schema["trainer"]:
                leaves = _leaves(f"trainer.{key}", item)
                self.late += [(leaf, 0, len(self.late)) for leaf in leaves]
            else:
                self.value(f"trainer.{key}", item)

    def group(self, group: str, value: Any) -> str | None:
        """A ``model:``/``data:``/``objective:`` mapping, checked when its file is read."""
        if value is None:
            return None
        if not isinstance(value, dict):
            self.classes[group] = None  # a class name, a file: not read here
            return None
        if group == "objective" and any(k in META for k in value):
            raise _Unsure
        if "class_path" in value:
            self.set_class(group, value["class_path"])
        init = value.get("init_args") or {}
        if not isinstance(init, dict):
            raise _Unsure
        accepts = self.accepts(group)
        if accepts is None:
            return None
        arguments = {**init, **{k: v for k, v in value.items() if k not in META}}
        for name, item in arguments.items():
            if name in accepts:
                self.value(f"{group}.{_name(name)}", item, group)
        bad = [
            leaf
            for name, item in arguments.items()
            if name not in accepts
            for leaf in _leaves(f"{group}.{_name(name)}", item)
        ]
        if not bad:
            return None
        # The class's parser validates the deepest key first, then in the order given.
        return self.unknown(min(bad, key=lambda k: -k.count(".")), self.classes[group])

    def unknown(self, key: str, class_path: str | None = None) -> str:
        """The full parser's message: the closest key among the parser's and the classes' (the
        class chosen for the key's group, the defaults for the others)."""
        key = re.match(r"[\w.\-]*", key.replace(".init_args.", ".")).group()
        candidates = list(self.schema["dests"])
        for group in GROUPS:
            chosen = class_path if class_path and key.startswith(group + ".") else None
            path = chosen or self.schema["defaults"][group]
            candidates += self.schema["classes"][group][path]["keys"]
        return unknown_key_message(key, closest_key(key, candidates))
