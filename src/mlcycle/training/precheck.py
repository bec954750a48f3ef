"""What train.py answers before importing Lightning (seconds of imports): ``--help`` from the
start-up cache (:mod:`mlcycle.training.cache`), and the config errors that jsonargparse finds on
train.py's parser rebuilt from the cached key schema (:func:`mlcycle.training.schema.rebuild`).

The rebuilt parser reads the ``--config`` files and the dotted overrides as the full parser
does: the same keys, groups and ``class_path`` classes, and the same types where a type is built
from int, float, bool, str, None and Literal (any other argument takes any value there). So it
finds the mistake the full parser finds, and :mod:`mlcycle.core.messages` words it the same
way. Its answer is taken when it is an unknown key (one not inside a known argument:
``--trainer.callbacks.patience`` may be the full parser's to read) or a value of the wrong type.
A missing or unparsable ``--config`` file is answered first, from the files alone (no schema
needed; the YAML message also names the file). Anything else goes on to the full parser, which
has the last word: a class named by a short name, or one whose arguments are not cached yet
(jsonargparse imports it to find out, so that call takes the full time). Where several things
are wrong, the one named may differ from the full parser's pick.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import sys
from argparse import ArgumentError
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from typing import Any

import yaml

from mlcycle.core.messages import explain
from mlcycle.training import cache

HELP_TEXTS = 20  # the help texts kept (one per command line asking for help), newest last
_HELP = re.compile(r"--[\w.]+\.help(=.*)?")
# Syntax errors only: a constructor error may be one the full parser's loader does not make.
_SYNTAX = (yaml.scanner.ScannerError, yaml.parser.ParserError, yaml.composer.ComposerError)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # jsonargparse's loader builds on it
_SYNTAX_WORDS = ("class_path", "init_args", "dict_kwargs", "__path__")  # not arguments


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


@contextmanager
def cached_help(argv: list[str]) -> Iterator[None]:
    """Print the help ``argv`` asks for from the cache and exit 0; else run the body (the full
    parser prints it and exits 0) and keep what it printed for the next call."""
    key = _help_key(argv)
    texts = cache.load().get("help", {})
    if key in texts:
        sys.stdout.write(texts[key])
        sys.stdout.flush()
        raise SystemExit(0)
    printed = io.StringIO()
    try:
        with redirect_stdout(printed):
            yield
    except SystemExit as exc:
        if exc.code in (0, None) and printed.getvalue():
            texts = {**cache.load().get("help", {}), key: printed.getvalue()}
            cache.update(help=dict(list(texts.items())[-HELP_TEXTS:]))
        raise
    finally:
        sys.stdout.write(printed.getvalue())


def check(argv: list[str], schema: dict[str, Any] | None) -> str | None:
    """The first error in ``argv`` that is certain without Lightning, as the full parser words
    it, or None. Without a ``schema`` only the config files are checked."""
    error = config_file_error(argv)  # first: it needs no schema, nor jsonargparse
    if error or not schema:
        return error
    # jsonargparse takes a tenth of a second to import: not before --help.
    from mlcycle.training.schema import STAND_INS, quote_plain_strings, rebuild

    try:
        parser, stand_ins = rebuild(schema)
    except Exception:  # a cache damaged by hand: the full parser decides
        return None
    args = [_named_stand_in(arg, stand_ins) for arg in quote_plain_strings(argv)[0]]
    try:
        with redirect_stdout(io.StringIO()):  # --print_config would print the stand-ins
            parser.parse_args(args)
    except ArgumentError as exc:
        real = {stand_in: path for path, stand_in in stand_ins.items()}
        message = re.sub(rf"{re.escape(STAND_INS)}\.\w+", lambda m: real.get(m[0], m[0]), str(exc))
        return _certain(schema, message)
    except (Exception, SystemExit):  # --print_config exits 0; else the full parser decides
        return None
    return None


def _named_stand_in(arg: str, stand_ins: dict[str, str]) -> str:
    """``arg`` naming the stand-in where its value is a cached class (a file's: the loader's)."""
    key, sep, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
    return f"{key}{sep}{stand_ins.get(value, value)}"


def _certain(schema: dict[str, Any], message: str) -> str | None:
    """The rebuilt parser's error as the full parser words it, where that is certain."""
    kind, line = explain(schema, message)
    if kind == "wrong type":
        return line
    if kind == "unknown key" and not _inside_known(line.split("'")[1], schema):
        return line
    return None


def _inside_known(key: str, schema: dict[str, Any]) -> bool:
    """Whether ``key`` is, or is inside, an argument the schema knows (an argument of a type the
    rebuilt parser does not read may accept it), or a word of the class syntax."""
    if any(word in _SYNTAX_WORDS for word in key.split(".")):
        return True
    known = {p["name"] for p in schema["args"]}
    for group, classes in schema["classes"].items():
        known |= {f"{group}.{p['name']}" for params in classes.values() for p in params}
    return any(key == k or key.startswith(k + ".") for k in known)


def config_file_error(argv: list[str]) -> str | None:
    """A ``--config`` file that does not exist or is not YAML, as the full parser words it (a
    YAML error names the file too); None at the first one given otherwise (inline, a URL)."""
    for arg, following in zip(argv, [*argv[1:], None], strict=True):
        value = _config_value(arg, following)
        if value is None or "://" in value:
            return None
        if not value:
            continue
        path = os.path.expanduser(value)
        path = path if os.path.isabs(path) else os.path.join(os.getcwd(), path)
        if not os.access(path, os.F_OK):
            try:
                inline = yaml.safe_load(value)
            except yaml.YAMLError:
                return None
            if not isinstance(inline, str):
                return None  # a config given inline
            return f"config key 'config': File does not exist: {path!r}"
        try:
            with open(path, encoding="utf-8") as stream:
                yaml.load(stream, Loader=_LOADER)
        except _SYNTAX as exc:
            return f"Problems parsing config: {exc}"
        except (OSError, ValueError, yaml.YAMLError):
            return None
    return None


def _config_value(arg: str, following: str | None) -> str | None:
    """The file ``arg`` gives to ``--config`` (``""`` when it gives none; None: not said)."""
    if arg in ("-c", "--config"):
        return None if following is None or following.startswith("--") else following
    if arg.startswith("--config="):
        return arg.removeprefix("--config=")
    return arg[2:] if arg.startswith("-c") else ""
