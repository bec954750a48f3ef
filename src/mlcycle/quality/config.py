"""Build the data module of a training config, the way ``train.py`` would, without training.

Several ``--config`` files merge in order (later keys win) and dotted overrides such as
``--data.root=PATH`` or ``--data.root PATH`` apply last; values are read as YAML.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path
from typing import Any

import yaml

from mlcycle.data.classification import ImageClassificationData
from mlcycle.data.records import check_strict
from mlcycle.data.sources import Found, load_samples
from mlcycle.errors import ArgParser, UserError


def add_config_arguments(parser: ArgParser) -> None:
    parser.add_argument(
        "--config",
        action="append",
        required=True,
        metavar="YAML",
        help="a training config; repeat to merge several in order",
    )


def parse_overrides(extra: list[str]) -> dict[str, Any]:
    """``['--data.root=x', '--data.image_size', '16']`` -> ``{'root': 'x', 'image_size': 16}``."""
    overrides: dict[str, Any] = {}
    i = 0
    while i < len(extra):
        arg = extra[i]
        if not arg.startswith("--data."):
            raise UserError(
                f"unrecognized argument '{arg}'; only --config and --data.KEY=VALUE overrides are accepted"
            )
        key, sep, value = arg[len("--data.") :].partition("=")
        if not sep:
            if i + 1 >= len(extra):
                raise UserError(f"'{arg}' needs a value, e.g. {arg}=VALUE")
            i += 1
            value = extra[i]
        overrides[key.removeprefix("init_args.")] = _value(value)
        i += 1
    return overrides


def _value(text: str) -> Any:
    """A command-line value read as YAML (numbers, null, lists), else kept as the string."""
    if text == "":
        return None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    # 'SELECT a FROM t WHERE b = 'x: y'' must stay a string, not become a mapping.
    if isinstance(value, dict | list) and not text.lstrip().startswith(("{", "[")):
        return text
    return value


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def read_configs(paths: list[str]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for name in paths:
        path = Path(name)
        if not path.is_file():
            raise UserError(f"config '{name}' does not exist; pass --config PATH.yaml")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise UserError(
                f"config '{name}' is not valid YAML: {' '.join(str(exc).split())}"
            ) from exc
        if not isinstance(loaded, dict):
            raise UserError(f"config '{name}' must be a mapping of keys to values")
        merged = _merge(merged, loaded)
    return merged


def _data_class(class_path: str | None) -> type[ImageClassificationData]:
    if not class_path:
        return ImageClassificationData
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise UserError(f"data.class_path '{class_path}' cannot be imported") from exc
    if not (isinstance(cls, type) and issubclass(cls, ImageClassificationData)):
        raise UserError(
            f"data.class_path '{class_path}' is not an image classification data module; "
            "these tools read mlcycle.data.ImageClassificationData configs"
        )
    return cls


def data_arguments(configs: list[str], overrides: dict[str, Any]) -> tuple[str | None, dict]:
    """The data class path and its merged ``init_args``."""
    data = read_configs(configs).get("data") or {}
    if not isinstance(data, dict):
        raise UserError("the config's 'data' section must be a mapping")
    if "class_path" in data or "init_args" in data:
        class_path, init_args = data.get("class_path"), dict(data.get("init_args") or {})
    else:
        class_path, init_args = None, dict(data)
    init_args.update(overrides)
    return class_path, init_args


def build_data(configs: list[str], overrides: dict[str, Any]) -> ImageClassificationData:
    """Instantiate the config's data module (checks its arguments; reads no image yet)."""
    class_path, init_args = data_arguments(configs, overrides)
    cls = _data_class(class_path)
    known = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(init_args) - known)
    if unknown:
        raise UserError(
            f"unknown data key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(known))}"
        )
    return cls(**init_args)


def all_samples(dm: ImageClassificationData) -> Found:
    """Every sample of the configured source, including files a quarantine list leaves out;
    manifest rows the source skipped are counted on stderr."""
    hp = dm.hparams
    options = dict(hp.source_options or {})
    options.update(root=hp.root, manifest=hp.manifest, path_column=hp.path_column)
    options.update(label_column=hp.label_column, url=hp.url, query=hp.query, layout=hp.layout)
    found = load_samples(hp.source, **options)
    where = hp.manifest or hp.root or hp.url or hp.source
    check_strict(found.skipped, hp.strict, where)
    if found.skipped:
        path, reason = found.skipped[0]
        print(
            f"warning: skipped {len(found.skipped)} row(s) of '{where}'; the first: '{path}': {reason}",
            file=sys.stderr,
        )
    if not found.samples:
        raise UserError(f"no images found in '{where}'; check the data section of the config")
    return found
