"""LightGBM's trees in ONNX with the very splits LightGBM makes on float32 features.

LightGBM keeps each numeric split threshold ``t`` as a float64 and sends a row left when
``x <= t``; ONNX's TreeEnsemble holds float32 thresholds, and onnxmltools rounds ``t`` to the
nearest float32. When that rounds up, a feature equal to the rounded value goes left in ONNX and
right in LightGBM: a leaf of one tree changes, and the probabilities differ by up to 1e-1
(seen on the wine table, randomized splits more often). The pipeline hands the model float32
features, and for every float32 ``x``, ``x <= t`` holds exactly when ``x <= down(t)``, the
largest float32 not above ``t``. So the converter is given a copy of the model whose numeric
thresholds are ``down(t)``: the same predictions on every float32 input, and thresholds ONNX
holds exactly.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np


def down(value: float) -> float:
    """The largest float32 that is not above ``value``, as a float."""
    rounded = np.float32(value)
    if float(rounded) > value:
        rounded = np.nextafter(rounded, np.float32(-np.inf))
    return float(rounded)


def _tree_lines(lines: list[str]) -> list[str]:
    """A tree's ``threshold=`` line with its numeric thresholds taken down to float32
    (categorical splits, bit 0 of ``decision_type``, keep theirs: they index category sets)."""
    kinds = next(
        (ln.split("=", 1)[1].split() for ln in lines if ln.startswith("decision_type=")), []
    )
    out = []
    for line in lines:
        if line.startswith("threshold=") and kinds:
            values = line.split("=", 1)[1].split()
            values = [
                v if int(k) & 1 else repr(down(float(v)))
                for v, k in zip(values, kinds, strict=True)
            ]
            line = "threshold=" + " ".join(values)
        out.append(line)
    return out


def float32_model_string(text: str) -> str:
    """A LightGBM model string with every numeric threshold taken down to float32."""
    lines, out, tree = text.split("\n"), [], []
    for line in lines:
        if line.startswith("Tree="):
            out.extend(_tree_lines(tree))
            tree = [line]
        elif tree and (line == "" or line.startswith("end of trees")):
            out.extend(_tree_lines(tree))
            tree = []
            out.append(line)
        elif tree:
            tree.append(line)
        elif not line.startswith("tree_sizes="):  # the blocks' byte sizes: they change
            out.append(line)
    out.extend(_tree_lines(tree))
    return "\n".join(out)


def float32_splits(model: Any) -> Any:
    """A copy of a fitted LGBMClassifier or LGBMRegressor with float32-exact thresholds."""
    import lightgbm

    clone = copy.copy(model)
    text = float32_model_string(model.booster_.model_to_string())
    clone._Booster = lightgbm.Booster(model_str=text)
    return clone


def exact_converter(convert: Callable[..., Any]) -> Callable[..., Any]:
    """onnxmltools' LightGBM converter, run on :func:`float32_splits` of the model."""

    def converter(scope: Any, operator: Any, container: Any) -> Any:
        original = operator.raw_operator
        operator.raw_operator = float32_splits(original)
        try:
            return convert(scope, operator, container)
        finally:
            operator.raw_operator = original

    return converter
