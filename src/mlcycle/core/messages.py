"""A jsonargparse error as one line naming the key, with the closest valid key: the same words
whether the full parser or the start-up check (:mod:`mlcycle.training.precheck`) found it.

Both word it from a key schema (:mod:`mlcycle.training.schema`): its keys are the candidates for
``did you mean``, and its types say what a key expects.
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Any

_WORDS = {"int": "an integer", "float": "a number", "bool": "true/false", "str": "a string"}
_CLASS = re.compile(r"<class '([\w.]+)'>")
# How jsonargparse names a key it does not accept (a command line, a file, a config group).
_UNKNOWN = (
    r"Option '([\w.\-]+)' is not accepted",
    r"(?i)unrecognized arguments:\s*--?([\w.\-=]+)",
    r'Key "([\w.\-]+)" is not expected',
    r"Group '([\w.]+)' does not accept option '([\w.\-]+)'",
)
_VALUE = r"(?:Expected a .*?\. Got value|Does not validate against any of the Union subtypes .*? Given value): (.+?)(?: - |$)"
# A class path that imports nothing (a typo), given as ``--model.class_path=`` or ``--model=``.
_NO_CLASS = (
    r"given class_path '([\w.]+)': (?:module '[\w.]+' has no attribute|No module named)"
    r"|Expected a dot import path string: ([\w.]+)"
)
_UNION = r"Does not validate against any of the Union subtypes Subtypes: \[(.*?)\]"


# The words people bring from other tools, by the last part of the key: asked before difflib,
# whose closest spelling of ``epochs`` is ``trainer.min_epochs``.
SYNONYMS = {
    **dict.fromkeys(("epochs", "epoch", "num_epochs", "n_epochs"), "trainer.max_epochs"),
    **dict.fromkeys(("lr", "learning_rate", "learningrate"), "model.lr"),
    **dict.fromkeys(("batch", "batch_size", "batchsize", "bs"), "data.batch_size"),
    **dict.fromkeys(("img_size", "imgsz", "image_size", "imagesize"), "data.image_size"),
}


def closest_key(key: str, candidates: list[str]) -> str | None:
    """The valid key closest to ``key``: a known synonym (:data:`SYNONYMS`), else the closest
    spelling (whole key, else its last part), or None."""
    candidates = sorted({c.replace(".init_args.", ".") for c in candidates} - {key})
    synonym = SYNONYMS.get(key.rsplit(".", 1)[-1].replace("-", "_").lower())
    if synonym in candidates:
        return synonym
    return closest_name(key, candidates)


def unknown_key_message(key: str, close: str | None) -> str:
    hint = f"; did you mean '{close}'?" if close else ""
    return f"unknown config key '{key}'{hint} (--help lists every key)"


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


def explain(schema: dict[str, Any], message: str) -> tuple[str, str]:
    """``(kind, line)`` for a jsonargparse error: kind ``unknown key``, ``wrong type`` (a value
    refused by a type built from int, float, bool, str, None and Literal) or ``other``."""
    text = " ".join(message.split())
    group = re.match(r'Parser key "([\w.]+)"', text)
    prefix = f"{group.group(1)}." if group and group.group(1) in schema["defaults"] else ""
    unknown = [m for pattern in _UNKNOWN for m in re.findall(pattern, text)]
    if unknown:
        name = ".".join(unknown[0]) if isinstance(unknown[0], tuple) else unknown[0].split("=")[0]
        key = prefix + name.replace(".init_args.", ".")
        chosen = re.search(r"given class_path '([\w.]+)'", text)
        keys = _keys(schema, key, chosen.group(1) if chosen else None)
        return "unknown key", unknown_key_message(key, closest_key(key, keys))
    unknown_class = _unknown_class(schema, text)
    if unknown_class:
        return "unknown class", unknown_class
    wrong = _wrong_type(schema, text, prefix)
    return ("wrong type", wrong) if wrong else ("other", _other(text, prefix))


def closest_name(name: str, known: list[str]) -> str | None:
    """The dotted name in ``known`` closest to ``name`` (whole name, else its last part): a
    config key, or a class path."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if not close:
        leaf = {k.rsplit(".", 1)[-1]: k for k in known}
        close = [
            leaf[m] for m in difflib.get_close_matches(name.rsplit(".", 1)[-1], list(leaf), n=1)
        ]
    return close[0] if close else None


def _unknown_class(schema: dict[str, Any], text: str) -> str | None:
    """A ``class_path`` that names no class, in one line with the closest known class (the
    schema's ``known_classes``: the full parser's; without them, the cached classes)."""
    group = re.match(r'Parser key "(\w+)":', text)
    name = re.search(_NO_CLASS, text)
    if not group or not name or group.group(1) not in schema["defaults"]:
        return None
    group_name, path = group.group(1), name.group(1) or name.group(2)
    known = schema.get("known_classes", {}).get(group_name) or list(schema["classes"][group_name])
    close = closest_name(path, sorted(set(known) - {path}))
    hint = f"; did you mean '{close}'?" if close else ""
    return f"config key '{group_name}': no class '{path}'{hint}"


def _wrong_type(schema: dict[str, Any], text: str, prefix: str) -> str | None:
    """A value of the wrong type, worded from the key's type; None unless the type is built
    from int, float, bool, str, None and Literal."""
    nested = re.search(
        rf"Problem with given class_path '([\w.]+)': Parser key \"(\w+)\": {_VALUE}", text
    )
    top = re.match(rf'Parser key "([\w.]+)": {_VALUE}', text)
    if nested and prefix:
        path, key, value = nested.group(1), prefix + nested.group(2), nested.group(3)
    elif top and not prefix:
        path, key, value = None, top.group(1), top.group(2)
    else:
        return None
    alternatives = _type_of(schema, key, path)
    return type_message(key, alternatives, value) if alternatives else None


def _other(text: str, prefix: str) -> str:
    """Any other error: the key and what jsonargparse says of it, in one line."""
    nested = re.search(
        rf"Problem with given class_path '[\w.]+': Parser key \"([\w.]+)\": {_UNION} Errors:.*?Given value: (.*?) - ",
        text,
    )
    union = re.match(rf'Parser key "([\w.]+)": {_UNION}', text)
    if nested and prefix:
        kinds = _CLASS.sub(r"\1", nested.group(2)).replace("NoneType", "null")
        return f"config key '{prefix}{nested.group(1)}': expected one of [{kinds}], got '{nested.group(3)}'"
    if union and not prefix:
        value = re.search(r"Given value: (.*)$", text)
        got = f", got '{value.group(1)}'" if value else ""
        kinds = _CLASS.sub(r"\1", union.group(2)).replace("NoneType", "null")
        return f"config key '{union.group(1)}': expected one of [{kinds}]{got}"
    bad = re.search(
        r"Parser key \"([\w.]+)\": (.+?)(?: - Expected a <class 'NoneType'>|$)",
        text.split("Errors:")[-1],
    )
    if bad:
        key = bad.group(1) if bad.group(1).startswith(prefix) else prefix + bad.group(1)
        detail = _CLASS.sub(r"\1", bad.group(2)).rstrip(" -")
        return f"config key '{key}': {detail[:300]}"
    text = _CLASS.sub(r"\1", text)
    return text if len(text) <= 400 else text[:400] + " ..."


def _keys(schema: dict[str, Any], key: str, path: str | None) -> list[str]:
    """The keys ``did you mean`` chooses from: the parser's, and the arguments of each group's
    class (``path`` for the key's group, else the default) but those linked from the data."""
    keys = list(schema["dests"])
    for group, default in schema["defaults"].items():
        chosen = path if path and key.startswith(group + ".") else default
        linked = schema["linked"] if group == "model" else []
        params = schema["classes"][group].get(chosen) or []
        keys += [f"{group}.{p['name']}" for p in params if p["name"] not in linked]
    return keys


def _type_of(schema: dict[str, Any], key: str, path: str | None) -> list[Any] | None:
    """The type of ``key`` as JSON where the schema knows it (a class's argument: of ``path``,
    else of the group's default class)."""
    group, _, name = key.partition(".")
    if group in schema["defaults"] and name:
        params = schema["classes"][group].get(path or schema["defaults"][group]) or []
    else:
        params, name = schema["args"], key
    return next((p["type"] for p in params if p["name"] == name), None)
