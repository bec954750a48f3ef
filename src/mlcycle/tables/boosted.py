"""Gradient-boosted trees (LightGBM, XGBoost, CatBoost) as classic table models.

:class:`~mlcycle.tables.classic.ClassicTabularTask` trains them by their short names
(``lightgbm``, ``xgboost``, ``catboost``). What differs from a scikit-learn estimator lives here:

- many trees by default (``n_estimators`` 2000) with early stopping on the run's own val rows
  (``early_stopping_rounds``), so the val split picks the number of trees;
- native categoricals: the pipeline's categorical codes (``categorical.encode: embedding``; the
  columns after ``num_numeric``) are LightGBM's ``categorical_feature`` and XGBoost's
  ``feature_types`` ``c``. CatBoost reads them as numbers: its ``cat_features`` want integer or
  text columns and its ONNX export refuses them, so it gets the pipeline's encoding;
- the ONNX converters: onnxmltools' for LightGBM and XGBoost and CatBoost's own export,
  registered into skl2onnx (:func:`register_converters`) so a booster converts as any
  scikit-learn estimator does, also inside an ensemble's graph.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mlcycle.core.errors import UserError

# Short names: (classification estimator, regression estimator).
BOOSTERS: dict[str, tuple[str, str]] = {
    "lightgbm": ("lightgbm.LGBMClassifier", "lightgbm.LGBMRegressor"),
    "xgboost": ("xgboost.XGBClassifier", "xgboost.XGBRegressor"),
    "catboost": ("catboost.CatBoostClassifier", "catboost.CatBoostRegressor"),
}
LIBRARIES = tuple(BOOSTERS)  # the module roots a checkpoint's booster may hold
TREES = 2000  # enough that early stopping, not the count, decides
LIBRARY_DEFAULTS: dict[str, dict[str, Any]] = {
    "lightgbm": {"n_estimators": TREES, "learning_rate": 0.05, "verbosity": -1},
    "xgboost": {"n_estimators": TREES, "learning_rate": 0.05, "tree_method": "hist"},
    "catboost": {
        "iterations": TREES,
        "learning_rate": 0.05,
        "verbose": False,
        "allow_writing_files": False,  # no catboost_info/ in the working directory
    },
}


def library(path: str) -> str | None:
    """``lightgbm``, ``xgboost`` or ``catboost`` for a booster's import path, else None."""
    root = path.split(".")[0]
    return root if root in LIBRARIES else None


def native_categories(path: str) -> bool:
    """Whether the booster takes the pipeline's category codes as categories (CatBoost: as
    numbers)."""
    return library(path) in ("lightgbm", "xgboost")


def check_installed(path: str) -> None:
    """A booster whose library is missing: the one line naming the extra that installs it."""
    name = library(path)
    if name is None:
        return
    import importlib

    from mlcycle.core.extras import missing_extra

    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:
        error = missing_extra(exc, f"model.estimator={name}")
        raise (error or exc) from exc


def defaults(path: str, seed: int, threads: int) -> dict[str, Any]:
    """A booster's defaults: many trees, quiet, seeded, ``threads`` threads."""
    name = library(path)
    if name is None:
        return {}
    options = dict(LIBRARY_DEFAULTS[name])
    if name == "catboost":  # CatBoost's get_params lists only what was given
        options.update(random_seed=seed, thread_count=threads)
    else:
        options["n_jobs"] = threads
    return options


def fit_booster(
    model: Any,
    x: np.ndarray,
    y: np.ndarray,
    val: tuple[np.ndarray, np.ndarray],
    categorical: list[int],
    rounds: int | None,
) -> None:
    """Fit ``model`` on ``(x, y)``, stopping after ``rounds`` rounds without improvement on
    ``val`` (none: every tree); ``categorical`` are the columns of category codes."""
    name = library(type(model).__module__)
    stop = bool(rounds) and len(val[1]) > 0
    if name == "lightgbm":
        import lightgbm

        callbacks = [lightgbm.early_stopping(int(rounds), verbose=False)] if stop else []
        model.fit(
            x,
            y,
            eval_set=[val] if stop else None,
            categorical_feature=categorical or "auto",
            callbacks=callbacks,
        )
    elif name == "xgboost":
        if categorical:
            kinds = ["c" if i in set(categorical) else "q" for i in range(x.shape[1])]
            model.set_params(enable_categorical=True, feature_types=kinds)
        model.set_params(early_stopping_rounds=int(rounds) if stop else None)
        model.fit(x, y, eval_set=[val] if stop else None, verbose=False)
    elif name == "catboost":
        if stop:
            model.fit(x, y, eval_set=val, early_stopping_rounds=int(rounds), use_best_model=True)
        else:
            model.fit(x, y)
    else:
        raise UserError(f"{type(model).__name__} is not a LightGBM, XGBoost or CatBoost model")


def stopping_split(
    x: np.ndarray, y: np.ndarray, fraction: float, seed: int, regression: bool
) -> tuple[np.ndarray, ...]:
    """``x_fit, x_stop, y_fit, y_stop``: ``fraction`` of the train rows held out for early
    stopping (stratified by class where every class has two rows)."""
    from sklearn.model_selection import train_test_split

    counts = np.unique(y, return_counts=True)[1]
    stratify = None if regression or counts.min() < 2 else y
    return train_test_split(x, y, test_size=fraction, random_state=seed, stratify=stratify)


def trees_used(model: Any) -> int | None:
    """The boosting rounds the fitted booster predicts with (after early stopping)."""
    name = library(type(model).__module__)
    if name == "lightgbm":
        best = model.best_iteration_
        return int(best) if best else int(model.booster_.current_iteration())
    if name == "xgboost":
        best = getattr(model, "best_iteration", None)
        return int(best) + 1 if best is not None else model.get_booster().num_boosted_rounds()
    if name == "catboost":
        return int(model.tree_count_)
    return None


def check_labels(model: Any, y: np.ndarray) -> None:
    """XGBoost wants the train classes 0..K-1: a class missing from train is a one-line error."""
    if library(type(model).__module__) != "xgboost" or not hasattr(model, "predict_proba"):
        return
    seen = np.unique(y)
    if len(seen) and (seen != np.arange(len(seen))).any():
        missing = sorted(set(range(int(seen.max()) + 1)) - set(seen.tolist()))
        raise UserError(
            f"xgboost needs every class in the train split; class index {missing[0]} has no "
            "train row (draw other splits, or use lightgbm)"
        )


# --- ONNX ----------------------------------------------------------------------------------------

_registered = False


def register_converters() -> None:
    """The boosters' ONNX converters registered into skl2onnx (once; a library that is not
    installed is skipped)."""
    global _registered
    if _registered:
        return
    _registered = True
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    for (classifier, regressor), convert in _converters().items():
        update_registered_converter(
            classifier,
            f"Mlcycle{classifier.__name__}",
            calculate_linear_classifier_output_shapes,
            convert,
            options=options,
            parser=_catboost_parser if classifier.__module__.startswith("catboost") else None,
        )
        update_registered_converter(
            regressor,
            f"Mlcycle{regressor.__name__}",
            calculate_linear_regressor_output_shapes,
            convert,
        )


def _converters() -> dict[tuple[type, type], Any]:
    found: dict[tuple[type, type], Any] = {}
    try:
        from lightgbm import LGBMClassifier, LGBMRegressor
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm

        from mlcycle.tables.lightgbm_onnx import exact_converter

        found[(LGBMClassifier, LGBMRegressor)] = exact_converter(convert_lightgbm)
    except ImportError:
        pass
    try:
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
        from xgboost import XGBClassifier, XGBRegressor

        found[(XGBClassifier, XGBRegressor)] = convert_xgboost
    except ImportError:
        pass
    try:
        from catboost import CatBoostClassifier, CatBoostRegressor

        found[(CatBoostClassifier, CatBoostRegressor)] = _convert_catboost
    except ImportError:
        pass
    return found


def _catboost_parser(scope: Any, model: Any, inputs: Any, custom_parsers: Any = None) -> Any:
    """skl2onnx's parser for a CatBoost classifier: a label and a probabilities output."""
    from skl2onnx._parse import _apply_zipmap, _get_sklearn_operator_name
    from skl2onnx.common.data_types import Int64TensorType, guess_tensor_type

    options = scope.get_options(model, dict(zipmap=True))
    operator = scope.declare_local_operator(_get_sklearn_operator_name(type(model)), model)
    operator.inputs = inputs
    label = scope.declare_local_variable("label", Int64TensorType())
    probabilities = scope.declare_local_variable("probabilities", guess_tensor_type(inputs[0].type))
    operator.outputs.extend([label, probabilities])
    if options["zipmap"] is False:
        return operator.outputs
    return _apply_zipmap(options["zipmap"], scope, model, inputs[0].type, operator.outputs)


def _convert_catboost(scope: Any, operator: Any, container: Any) -> None:
    """CatBoost's own ONNX export (one TreeEnsemble node) added to skl2onnx's graph."""
    from catboost.utils import convert_to_onnx_object
    from onnx import helper

    onx = convert_to_onnx_object(operator.raw_operator)
    opsets = {d.domain: d.version for d in onx.opset_import}
    node = onx.graph.node[0]
    if not node.op_type.startswith("TreeEnsemble") or len(onx.graph.initializer):
        kinds = ", ".join(n.op_type for n in onx.graph.node)
        raise UserError(f"CatBoost's ONNX export gave nodes this export cannot take: {kinds}")
    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    container.add_node(
        node.op_type,
        [operator.inputs[0].full_name],
        [o.full_name for o in operator.outputs],
        op_domain=node.domain,
        op_version=opsets.get(node.domain),
        **attributes,
    )
