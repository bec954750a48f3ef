"""``data.pipeline``: its options, their defaults and the allowed values, checked before a
table is read (:func:`resolve_config`), and the column names it gives checked against the schema
(:func:`check_names`)."""

from __future__ import annotations

import copy
import difflib
from typing import Any

from mlcycle.core.errors import UserError
from mlcycle.tables.schema import Schema
from mlcycle.tables.steps import DATE_PARTS, STATS

KEY = "data.pipeline"
DEFAULTS: dict[str, Any] = {
    "missing": {
        "drop_columns_over": 0.5,  # drop a feature column missing in more of the train rows
        "drop_rows_over": None,  # drop a train row missing more of its features (never val/test)
        "numeric": "median",  # mean | median | most_frequent | constant
        "fill_value": 0.0,  # the numeric constant
        "categorical": "constant",  # constant (a "missing" category) | most_frequent
        "indicator": True,  # a 0/1 <column>_missing column for each column missing in train
    },
    "outliers": {
        "handle": "none",  # none | clip | flag
        "rule": "iqr",  # iqr: outside [q1 - f*IQR, q3 + f*IQR]; zscore: |x - mean| > f*std
        "factor": None,  # f: 1.5 for iqr, 3.0 for zscore
        "columns": None,  # None: every numeric column of the table
    },
    "transform": {
        "default": "none",  # none | log | sqrt | yeo-johnson | box-cox | auto
        "columns": {},  # {column: transform}
    },
    "bucket": {
        "columns": [],  # numeric columns to cut into bins (one-hot)
        "bins": 5,
        "strategy": "quantile",  # quantile | uniform
        "replace": False,  # true: the bins replace the column; false: both
    },
    "dates": {"parts": ["year", "month", "weekday", "hour"], "cyclic": True},
    "categorical": {
        "encode": "onehot",  # onehot | ordinal | target | embedding
        "columns": {},  # {column: encode}
        "max_categories": 20,  # one-hot: the most frequent N get a column, the rest none
        "min_frequency": 1,  # a category seen fewer times in train counts as unseen
    },
    "aggregates": [],  # [{column, by, stats: [mean, count, ...]}]
    "scale": "standard",  # standard | minmax | none
    "select": {
        "constant": True,  # drop columns constant on train
        "near_constant": 0.99,  # drop columns whose most frequent value has this share (None: off)
        "correlated": 0.95,  # drop the later of two columns correlated above this (None: off)
        "mutual_info_top_k": None,  # keep the k columns with the most mutual information
    },
    "seed": 0,  # target encoding's folds, mutual information
}
CHOICES: dict[str, tuple[Any, ...]] = {
    "missing.numeric": ("mean", "median", "most_frequent", "constant"),
    "missing.categorical": ("constant", "most_frequent"),
    "outliers.handle": ("none", "clip", "flag"),
    "outliers.rule": ("iqr", "zscore"),
    "transform.default": ("none", "log", "sqrt", "yeo-johnson", "box-cox", "auto"),
    "bucket.strategy": ("quantile", "uniform"),
    "categorical.encode": ("onehot", "ordinal", "target", "embedding"),
    "scale": ("standard", "minmax", "none"),
}


def _unknown(key: str, known: list[str]) -> UserError:
    close = difflib.get_close_matches(key.rsplit(".", 1)[-1], known, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return UserError(f"{KEY}.{key} is not a pipeline option; {hint}options: {', '.join(known)}")


def _merge(defaults: dict[str, Any], given: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = copy.deepcopy(defaults)
    for key, value in (given or {}).items():
        if key not in defaults:
            raise _unknown(prefix + key, list(defaults))
        free = key in ("columns", "aggregates") or isinstance(defaults[key], list)
        if isinstance(defaults[key], dict) and not free:
            if not isinstance(value, dict):
                raise UserError(f"{KEY}.{prefix}{key} must be a mapping of options")
            out[key] = _merge(defaults[key], value, f"{prefix}{key}.")
        else:
            out[key] = copy.deepcopy(value)
    return out


def _share(config: dict[str, Any], path: str, upper: float = 1.0) -> None:
    group, key = path.split(".")
    value = config[group][key]
    if value is not None and not (0 <= float(value) <= upper):
        raise UserError(f"{KEY}.{path}={value} must be a share between 0 and {upper}")


def resolve_config(config: dict[str, Any] | None) -> dict[str, Any]:
    """``config`` over :data:`DEFAULTS`, checked: an unknown key or value is a one-line error."""
    cfg = _merge(DEFAULTS, config or {})
    for path, choices in CHOICES.items():
        group, _, key = path.partition(".")
        value = cfg[group][key] if key else cfg[group]
        if value not in choices:
            raise UserError(f"{KEY}.{path}='{value}' is not one of {', '.join(map(str, choices))}")
    for path, choices in (
        ("transform.columns", CHOICES["transform.default"]),
        ("categorical.columns", CHOICES["categorical.encode"]),
    ):
        group = path.split(".")[0]
        if not isinstance(cfg[group]["columns"], dict):
            raise UserError(f"{KEY}.{path} must map column names to one of {', '.join(choices)}")
        for column, value in cfg[group]["columns"].items():
            if value not in choices:
                raise UserError(
                    f"{KEY}.{path}.{column}='{value}' is not one of {', '.join(choices)}"
                )
    for path in ("missing.drop_columns_over", "missing.drop_rows_over", "select.near_constant"):
        _share(cfg, path)
    _share(cfg, "select.correlated")
    if cfg["outliers"]["factor"] is None:
        cfg["outliers"]["factor"] = 1.5 if cfg["outliers"]["rule"] == "iqr" else 3.0
    if int(cfg["bucket"]["bins"]) < 2:
        raise UserError(f"{KEY}.bucket.bins={cfg['bucket']['bins']} must be 2 or more")
    bad = [p for p in cfg["dates"]["parts"] if p not in DATE_PARTS]
    if bad:
        raise UserError(f"{KEY}.dates.parts: '{bad[0]}' is not one of {', '.join(DATE_PARTS)}")
    specs = []
    for i, spec in enumerate(cfg["aggregates"] or []):
        where = f"{KEY}.aggregates[{i}]"
        if not isinstance(spec, dict) or not {"column", "by"} <= set(spec):
            raise UserError(f"{where} needs 'column' and 'by' (and optionally 'stats')")
        extra = set(spec) - {"column", "by", "stats"}
        if extra:
            raise UserError(f"{where}.{sorted(extra)[0]} is not an option; use column, by, stats")
        stats = spec.get("stats") or ["mean"]
        stats = [stats] if isinstance(stats, str) else list(stats)
        wrong = [s for s in stats if s not in STATS]
        if wrong:
            raise UserError(f"{where}.stats: '{wrong[0]}' is not one of {', '.join(STATS)}")
        specs.append({"column": str(spec["column"]), "by": str(spec["by"]), "stats": stats})
    cfg["aggregates"] = specs
    k = cfg["select"]["mutual_info_top_k"]
    if k is not None and int(k) < 1:
        raise UserError(f"{KEY}.select.mutual_info_top_k={k} must be 1 or more, or null")
    return cfg


def check_names(schema: Schema, cfg: dict[str, Any]) -> None:
    """Every column the config names is a feature of the right kind."""
    kinds = {c.name: c.kind for c in schema.features}
    dropped = {c.name: c.dropped for c in schema.columns if c.dropped}

    def need(column: str, where: str, allowed: tuple[str, ...]) -> None:
        if column in dropped:
            raise UserError(f"{where} names '{column}', which is not a feature ({dropped[column]})")
        if column not in kinds:
            close = difflib.get_close_matches(column, list(kinds), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise UserError(f"{where} names '{column}', which is not a column of the table{hint}")
        if kinds[column] not in allowed:
            raise UserError(
                f"{where} names '{column}', a {kinds[column]} column; it needs a "
                f"{' or '.join(allowed)} column"
            )

    for column in cfg["bucket"]["columns"]:
        need(column, f"{KEY}.bucket.columns", ("numeric",))
    for column in cfg["outliers"]["columns"] or []:
        need(column, f"{KEY}.outliers.columns", ("numeric",))
    for column in cfg["categorical"]["columns"]:
        need(column, f"{KEY}.categorical.columns", ("categorical", "text", "boolean"))
    for i, spec in enumerate(cfg["aggregates"]):
        need(spec["column"], f"{KEY}.aggregates[{i}].column", ("numeric", "boolean"))
        need(spec["by"], f"{KEY}.aggregates[{i}].by", ("categorical", "text", "boolean", "numeric"))
