"""skl2onnx converters for the pipeline's own transformers (:mod:`mlcycle.tables.steps`), so the
fitted pipeline exports as ONNX operators like the stock scikit-learn ones.

Each converter keeps NumPy's treatment of missing values: a NaN stays NaN through ``Clip`` and
``Shift`` (ONNX ``Max``/``Min`` need not propagate NaN, so ``Where(IsNaN)`` keeps it), a flag
of a NaN is 0, and a missing or unseen category is code 0. :func:`register` is idempotent.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import TensorProto
from skl2onnx import update_registered_converter
from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
from skl2onnx.shape_calculators.imputer import calculate_sklearn_imputer_output_shapes
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import PowerTransformer

from mlcycle.tables import steps

ML = "ai.onnx.ml"
NUMPY = {TensorProto.FLOAT: np.float32, TensorProto.DOUBLE: np.float64, TensorProto.INT64: np.int64}
_registered = False


def _name(scope: Any, hint: str) -> str:
    return scope.get_unique_variable_name(hint)


def _const(
    scope: Any, container: Any, hint: str, values: Any, dtype: int = TensorProto.FLOAT
) -> str:
    """An initializer holding ``values`` (a [1, k] row for per-column constants)."""
    array = np.asarray(values, dtype=NUMPY[dtype])
    name = _name(scope, hint)
    container.add_initializer(name, dtype, list(array.shape), array.ravel().tolist())
    return name


def _elem(operator: Any) -> int:
    """The output's number type: double for a double input, float otherwise (strings)."""
    double = isinstance(operator.inputs[0].type, DoubleTensorType)
    return TensorProto.DOUBLE if double else TensorProto.FLOAT


def _float_shape(width: Any) -> Any:
    """Outputs ``[N, width(step)]`` of the input's number type."""

    def shape(operator: Any) -> None:
        rows = operator.inputs[0].get_first_dimension()
        kind = DoubleTensorType if _elem(operator) == TensorProto.DOUBLE else FloatTensorType
        operator.outputs[0].type = kind([rows, width(operator.raw_operator)])

    return shape


def _keep_nan(scope: Any, container: Any, x: str, y: str, out: str) -> None:
    """``out = IsNaN(x) ? x : y``."""
    nan = _name(scope, "isnan")
    container.add_node("IsNaN", [x], [nan], name=_name(scope, "IsNaN"))
    container.add_node("Where", [nan, x, y], [out], name=_name(scope, "Where"))


def _cast_out(scope: Any, operator: Any, container: Any, x: str) -> None:
    """The operator's output: ``x`` cast to the output's element type."""
    output = operator.outputs[0].full_name
    container.add_node("Cast", [x], [output], to=_elem(operator), name=_name(scope, "Cast"))


def convert_missing_flags(scope: Any, operator: Any, container: Any) -> None:
    nan = _name(scope, "isnan")
    container.add_node("IsNaN", [operator.inputs[0].full_name], [nan], name=_name(scope, "IsNaN"))
    _cast_out(scope, operator, container, nan)


def convert_clip(scope: Any, operator: Any, container: Any) -> None:
    step = operator.raw_operator
    x = operator.inputs[0].full_name
    lower = _const(scope, container, "lower", step.lower_[None, :], _elem(operator))
    upper = _const(scope, container, "upper", step.upper_[None, :], _elem(operator))
    low, clipped = _name(scope, "low"), _name(scope, "clipped")
    container.add_node("Max", [x, lower], [low], name=_name(scope, "Max"))
    container.add_node("Min", [low, upper], [clipped], name=_name(scope, "Min"))
    _keep_nan(scope, container, x, clipped, operator.outputs[0].full_name)


def convert_outlier_flags(scope: Any, operator: Any, container: Any) -> None:
    step = operator.raw_operator
    x = operator.inputs[0].full_name
    keep = np.asarray(step.keep_, dtype=np.int64)
    if len(keep) == 0:  # no column had outliers on train: an [N, 0] output
        empty = _name(scope, "none")
        container.add_initializer(empty, TensorProto.INT64, [0], [])
        container.add_node(
            "Gather",
            [x, empty],
            [operator.outputs[0].full_name],
            axis=1,
            name=_name(scope, "Gather"),
        )
        return
    columns = _name(scope, "kept")
    index = _const(scope, container, "keep", keep, TensorProto.INT64)
    container.add_node("Gather", [x, index], [columns], axis=1, name=_name(scope, "Gather"))
    lower = _const(scope, container, "lower", step.lower_[keep][None, :], _elem(operator))
    upper = _const(scope, container, "upper", step.upper_[keep][None, :], _elem(operator))
    below, above, either = _name(scope, "below"), _name(scope, "above"), _name(scope, "outside")
    container.add_node("Less", [columns, lower], [below], name=_name(scope, "Less"))
    container.add_node("Greater", [columns, upper], [above], name=_name(scope, "Greater"))
    container.add_node("Or", [below, above], [either], name=_name(scope, "Or"))
    _cast_out(scope, operator, container, either)


def convert_shift(scope: Any, operator: Any, container: Any) -> None:
    step = operator.raw_operator
    x = operator.inputs[0].full_name
    shift = _const(scope, container, "shift", step.shift_[None, :], _elem(operator))
    zero = _const(scope, container, "zero", [0.0], _elem(operator))
    moved, positive, done = _name(scope, "moved"), _name(scope, "positive"), _name(scope, "shifted")
    container.add_node("Sub", [x, shift], [moved], name=_name(scope, "Sub"))
    container.add_node("Max", [moved, zero], [positive], name=_name(scope, "Max"))
    if step.func == "log":
        one = _const(scope, container, "one", [1.0], _elem(operator))
        plus = _name(scope, "plus1")
        container.add_node("Add", [positive, one], [plus], name=_name(scope, "Add"))
        container.add_node("Log", [plus], [done], name=_name(scope, "Log"))
    else:
        container.add_node("Sqrt", [positive], [done], name=_name(scope, "Sqrt"))
    _keep_nan(scope, container, x, done, operator.outputs[0].full_name)


def convert_category_codes(scope: Any, operator: Any, container: Any) -> None:
    """Per column: ``LabelEncoder`` string -> 1..n (0 for anything else), then float."""
    step = operator.raw_operator
    x = operator.inputs[0].full_name
    codes = []
    for j, categories in enumerate(step.categories_):
        column, code = _name(scope, f"col{j}"), _name(scope, f"code{j}")
        index = _const(scope, container, f"j{j}", [j], TensorProto.INT64)
        container.add_node("Gather", [x, index], [column], axis=1, name=_name(scope, "Gather"))
        keys = [str(c) for c in categories] or ["\x00none"]
        values = list(range(1, len(categories) + 1)) or [0]
        container.add_node(
            "LabelEncoder", [column], [code], op_domain=ML, op_version=2,
            keys_strings=keys, values_int64s=values, default_int64=0,
            name=_name(scope, "LabelEncoder"),
        )  # fmt: skip
        codes.append(code)
    joined = _name(scope, "codes")
    container.add_node("Concat", codes, [joined], axis=1, name=_name(scope, "Concat"))
    _cast_out(scope, operator, container, joined)


def convert_power(scope: Any, operator: Any, container: Any) -> None:
    """PowerTransformer (Yeo-Johnson or Box-Cox, then optional standardization) in the input's
    own precision: skl2onnx's converter is float-only, and the pipeline runs in double."""
    step = operator.raw_operator
    elem = _elem(operator)
    x = operator.inputs[0].full_name
    lam = np.asarray(step.lambdas_, dtype=float)
    tiny = np.spacing(1.0)

    def node(op: str, inputs: list[str], **attrs: Any) -> str:
        out = _name(scope, op.lower())
        container.add_node(op, inputs, [out], name=_name(scope, op), **attrs)
        return out

    def const(hint: str, values: Any) -> str:
        return _const(scope, container, hint, np.asarray(values, dtype=float)[None, :], elem)

    def mask(hint: str, values: np.ndarray) -> str:
        name = _name(scope, hint)
        container.add_initializer(name, TensorProto.BOOL, [1, len(values)], values.tolist())
        return name

    one = _const(scope, container, "one", [1.0], elem)
    if step.method == "yeo-johnson":
        zero = _const(scope, container, "zero", [0.0], elem)
        pos = node("GreaterOrEqual", [x, zero])
        up = node("Add", [x, one])  # x >= 0: ((x + 1)^l - 1) / l, or log(x + 1) when l = 0
        l_pos = np.where(np.abs(lam) < tiny, 1.0, lam)
        powered = node(
            "Div", [node("Sub", [node("Pow", [up, const("lp", l_pos)]), one]), const("lp", l_pos)]
        )
        positive = node("Where", [mask("l0", np.abs(lam) < tiny), node("Log", [up]), powered])
        down = node("Sub", [one, x])  # x < 0: -((1 - x)^(2 - l) - 1) / (2 - l), or -log(1 - x)
        l_neg = np.where(np.abs(lam - 2) < tiny, 1.0, 2 - lam)
        powered = node(
            "Div", [node("Sub", [node("Pow", [down, const("ln", l_neg)]), one]), const("ln", l_neg)]
        )
        negative = node(
            "Neg",
            [node("Where", [mask("l2", np.abs(lam - 2) < tiny), node("Log", [down]), powered])],
        )
        out = node("Where", [pos, positive, negative])
    else:  # box-cox: (x^l - 1) / l, or log(x) when l = 0
        l_safe = np.where(lam == 0, 1.0, lam)
        powered = node(
            "Div", [node("Sub", [node("Pow", [x, const("l", l_safe)]), one]), const("l", l_safe)]
        )
        out = node("Where", [mask("l0", lam == 0), node("Log", [x]), powered])
    if step.standardize:
        scaler = step._scaler
        out = node(
            "Div", [node("Sub", [out, const("mean", scaler.mean_)]), const("scale", scaler.scale_)]
        )
    container.add_node("Identity", [out], [operator.outputs[0].full_name], name=_name(scope, "Id"))


def convert_imputer(scope: Any, operator: Any, container: Any) -> None:
    """SimpleImputer: numbers as ``Where(IsNaN(x), statistics, x)`` in the input's precision
    (ONNX Runtime's Imputer is float-only); strings by skl2onnx's own converter."""
    from skl2onnx.common.data_types import StringTensorType
    from skl2onnx.operator_converters.common import concatenate_variables
    from skl2onnx.operator_converters.imputer_op import convert_sklearn_imputer

    if isinstance(operator.inputs[0].type, StringTensorType):
        convert_sklearn_imputer(scope, operator, container)
        return
    step = operator.raw_operator
    x = concatenate_variables(scope, operator.inputs, container)
    fill = _const(
        scope,
        container,
        "fill",
        np.asarray(step.statistics_, dtype=float)[None, :],
        _elem(operator),
    )
    nan = _name(scope, "isnan")
    container.add_node("IsNaN", [x], [nan], name=_name(scope, "IsNaN"))
    container.add_node(
        "Where", [nan, fill, x], [operator.outputs[0].full_name], name=_name(scope, "Where")
    )


def _int_missing_flags() -> None:
    """skl2onnx 1.20 passes HistGradientBoosting's ``missing_go_to_left``, a bool under
    scikit-learn 1.9, into an integer attribute and fails; hand it an int."""
    from skl2onnx.common import tree_ensemble

    add_node = tree_ensemble.add_node
    if getattr(add_node, "_mlcycle", False):
        return

    def patched(*args: Any, nodes_missing_value_tracks_true: Any = 0, **kwargs: Any) -> Any:
        flag = int(nodes_missing_value_tracks_true)
        return add_node(*args, nodes_missing_value_tracks_true=flag, **kwargs)

    patched._mlcycle = True  # type: ignore[attr-defined]
    tree_ensemble.add_node = patched


def register() -> None:
    """Tell skl2onnx how to convert the pipeline's own array steps (once)."""
    global _registered
    if _registered:
        return
    _int_missing_flags()
    update_registered_converter(
        steps.MissingFlags, "MlcycleMissingFlags", _float_shape(lambda s: s.n_features_in_),
        convert_missing_flags,
    )  # fmt: skip
    update_registered_converter(
        steps.Clip, "MlcycleClip", _float_shape(lambda s: s.n_features_in_), convert_clip
    )
    update_registered_converter(
        steps.OutlierFlags, "MlcycleOutlierFlags", _float_shape(lambda s: len(s.keep_)),
        convert_outlier_flags,
    )  # fmt: skip
    update_registered_converter(
        steps.Shift, "MlcycleShift", _float_shape(lambda s: s.n_features_in_), convert_shift
    )
    update_registered_converter(  # replaces skl2onnx's float-only one for numbers
        SimpleImputer, "SklearnSimpleImputer", calculate_sklearn_imputer_output_shapes,
        convert_imputer,
    )  # fmt: skip
    update_registered_converter(  # replaces skl2onnx's float-only one
        PowerTransformer, "SklearnPowerTransformer", _float_shape(lambda s: len(s.lambdas_)),
        convert_power,
    )  # fmt: skip
    update_registered_converter(
        steps.CategoryCodes, "MlcycleCategoryCodes", _float_shape(lambda s: len(s.categories_)),
        convert_category_codes,
    )  # fmt: skip
    _registered = True
