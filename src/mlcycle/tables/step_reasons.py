"""The reasons a fitted step of :class:`~mlcycle.tables.pipeline.ColumnPlan` gives, one per
column, with the values it learned on the train rows (``pipeline.json``'s ``steps``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import (
    KBinsDiscretizer,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    PowerTransformer,
    StandardScaler,
    TargetEncoder,
)

from mlcycle.tables.steps import CategoryCodes, Clip, MissingFlags, OutlierFlags, Shift, reason

Reasons = list[dict[str, str]]


@dataclass
class Fitted:
    """What a step's reasons need besides the step: its branch's name and columns, each
    column's missing share in train and each numeric column's transform and why."""

    branch: str
    cols: list[str]
    missing: dict[str, float]
    choices: dict[str, tuple[str, str]]


def _impute(step: SimpleImputer, at: Fitted) -> Reasons:
    label = "most frequent" if at.branch == "boolean" else step.strategy.replace("_", " ")
    out = []
    for j, c in enumerate(at.cols):
        share = at.missing.get(c, 0.0)
        if share > 0:
            value = step.statistics_[j]
            shown = f"{value:.4g}" if isinstance(value, float | np.floating) else f"'{value}'"
            out.append(reason("impute", c, f"{label} {shown} ({share:.1%} missing in train)"))
    return out


def _missing_flags(step: MissingFlags, at: Fitted) -> Reasons:
    return [
        reason("missing_indicator", flag, f"{at.missing[c]:.1%} missing in train")
        for c, flag in zip(at.cols, step.names or at.cols, strict=True)
    ]


def _clip(step: Clip, at: Fitted) -> Reasons:
    return [
        reason(
            "clip",
            c,
            f"to [{step.lower_[j]:.4g}, {step.upper_[j]:.4g}] ({step.rule}, factor "
            f"{step.factor:g}); {int(step.outside_[j])} train value(s) outside",
        )
        for j, c in enumerate(at.cols)
    ]


def _outlier_flags(step: OutlierFlags, at: Fitted) -> Reasons:
    out = []
    for j, c in enumerate(at.cols):
        n = int(step.outside_[j])
        bounds = f"[{step.lower_[j]:.4g}, {step.upper_[j]:.4g}]"
        text = (
            f"1 outside {bounds} ({step.rule}); {n} in train"
            if j in step.keep_
            else f"no train value outside {bounds}: no flag"
        )
        out.append(reason("outlier_flag", c, text))
    return out


def _transform(step: Shift | PowerTransformer, at: Fitted) -> Reasons:
    out = []
    for j, c in enumerate(at.cols):
        why = at.choices[c][1]
        if isinstance(step, PowerTransformer):
            why += f"; lambda {step.lambdas_[j]:.4g}"
        elif step.shift_[j] != 0:
            why += f"; shifted by the train minimum {step.shift_[j]:.4g}"
        out.append(reason("transform", c, why))
    return out


def _scale(step: StandardScaler | MinMaxScaler, at: Fitted) -> Reasons:
    standard = isinstance(step, StandardScaler)
    what = "standard: (x - mean) / std" if standard else "min-max to [0, 1]"
    return [reason("scale", c, f"{what}, fitted on train") for c in at.cols]


def _bucket(step: KBinsDiscretizer, at: Fitted) -> Reasons:
    return [
        reason("bucket", c, f"{int(step.n_bins_[j])} {step.strategy} bins, one-hot")
        for j, c in enumerate(at.cols)
    ]


def _onehot(step: OneHotEncoder, at: Fitted) -> Reasons:
    return [
        reason("encode", c, f"one-hot, {len(step.categories_[j])} categories (others: all zeros)")
        for j, c in enumerate(at.cols)
    ]


def _ordinal(step: OrdinalEncoder, at: Fitted) -> Reasons:
    return [
        reason("encode", c, f"ordinal codes 0..{len(step.categories_[j]) - 1} (unseen: -1)")
        for j, c in enumerate(at.cols)
    ]


def _target(step: TargetEncoder, at: Fitted) -> Reasons:
    why = "target encoding, cross-fitted on train (5 folds) so a row's own target never encodes it"
    return [reason("encode", c, why) for c in at.cols]


def _codes(step: CategoryCodes, at: Fitted) -> Reasons:
    return [
        reason("encode", c, f"embedding codes 1..{len(step.categories_[j])} (0: missing, rare or unseen)")
        for j, c in enumerate(at.cols)
    ]  # fmt: skip


# Checked in order: the first type the step is an instance of gives its reasons.
DESCRIBE: list[tuple[type | tuple[type, ...], Callable[[Any, Fitted], Reasons]]] = [
    (SimpleImputer, _impute),
    (MissingFlags, _missing_flags),
    (Clip, _clip),
    (OutlierFlags, _outlier_flags),
    ((Shift, PowerTransformer), _transform),
    ((StandardScaler, MinMaxScaler), _scale),
    (KBinsDiscretizer, _bucket),
    (OneHotEncoder, _onehot),
    (OrdinalEncoder, _ordinal),
    (TargetEncoder, _target),
    (CategoryCodes, _codes),
]


def step_reasons(step: Any, at: Fitted) -> Reasons:
    """One reason per column of a fitted step (none for a step without a description)."""
    for kinds, describe in DESCRIBE:
        if isinstance(step, kinds):
            return describe(step, at)
    return []
