"""Classic scikit-learn models on a table, trained through ``train.py``: the same config, data,
splits, run directory, metrics and checkpoints as the MLP.

The estimator is fitted on the whole train split at the start of the fit; the one epoch that
follows scores it on the training batches (``train/loss``) and validates it with the metrics of
:class:`~mlcycle.tables.task.TableTask`, so ``metrics.json`` reads as any run's.

The fitted estimator lives in the checkpoint as skops bytes in a uint8 tensor: the checkpoint
stays loadable with ``torch.load(weights_only=True)`` (no pickle), and loading it back accepts
only scikit-learn, NumPy and SciPy types (skops' audit of the file, not pickle's trust).
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from mlcycle.core.errors import UserError
from mlcycle.core.imports import import_object
from mlcycle.tables import boosted
from mlcycle.tables.task import TableTask

# Short names: (classification estimator, regression estimator).
ESTIMATORS: dict[str, tuple[str | None, str | None]] = {
    "linear": ("sklearn.linear_model.LogisticRegression", "sklearn.linear_model.LinearRegression"),
    "logistic_regression": ("sklearn.linear_model.LogisticRegression", None),
    "linear_regression": (None, "sklearn.linear_model.LinearRegression"),
    "svm": ("sklearn.svm.SVC", "sklearn.svm.SVR"),
    "knn": ("sklearn.neighbors.KNeighborsClassifier", "sklearn.neighbors.KNeighborsRegressor"),
    "decision_tree": ("sklearn.tree.DecisionTreeClassifier", "sklearn.tree.DecisionTreeRegressor"),
    "random_forest": (
        "sklearn.ensemble.RandomForestClassifier",
        "sklearn.ensemble.RandomForestRegressor",
    ),
    "extra_trees": (
        "sklearn.ensemble.ExtraTreesClassifier",
        "sklearn.ensemble.ExtraTreesRegressor",
    ),
    "hist_gradient_boosting": (
        "sklearn.ensemble.HistGradientBoostingClassifier",
        "sklearn.ensemble.HistGradientBoostingRegressor",
    ),
    **boosted.BOOSTERS,  # lightgbm, xgboost, catboost
}
# Defaults that give probabilities and converge on standardized tables; params override them.
DEFAULTS: dict[str, dict[str, Any]] = {
    "sklearn.svm.SVC": {"probability": True},
    "sklearn.linear_model.LogisticRegression": {"max_iter": 1000},
}
# Module roots whose types a checkpoint's estimator may hold (the boosters' objects restore
# from their own model formats, not from pickled code).
TRUSTED_ROOTS = ("sklearn", "numpy", "scipy", "builtins", "collections", *boosted.LIBRARIES)


def estimator_path(estimator: str, kind: str) -> str:
    """The import path of ``estimator`` (a short name or a path) for ``kind``."""
    if "." in estimator:
        return estimator
    if estimator not in ESTIMATORS:
        names = ", ".join(ESTIMATORS)
        raise UserError(
            f"model.estimator='{estimator}' is neither a short name ({names}) nor an import "
            "path such as sklearn.ensemble.ExtraTreesClassifier"
        )
    path = ESTIMATORS[estimator][0 if kind == "classification" else 1]
    if path is None:
        raise UserError(f"model.estimator='{estimator}' has no {kind} model; try 'linear'")
    return path


def build_estimator(estimator: str, params: dict[str, Any], kind: str, seed: int) -> Any:
    """An unfitted estimator: its defaults, then ``params``; ``random_state`` from the run's
    seed unless given."""
    path = estimator_path(estimator, kind)
    boosted.check_installed(path)
    cls = import_object(path, "model.estimator")
    if not hasattr(cls, "fit"):
        raise UserError(f"model.estimator '{path}' is not a scikit-learn estimator (no fit)")
    threads = max(1, _cores() - 1)
    options = {**boosted.defaults(path, seed, threads), **DEFAULTS.get(path, {}), **params}
    try:
        model = cls(**options)
    except TypeError as exc:
        raise UserError(f"model.params do not fit {path}: {exc}") from exc
    if "random_state" in model.get_params() and "random_state" not in params:
        model.set_params(random_state=seed)
    return model


def estimator_to_tensor(model: Any) -> torch.Tensor:
    """The fitted estimator as skops bytes in a uint8 tensor (safe in a weights-only checkpoint)."""
    import skops.io

    return torch.frombuffer(bytearray(skops.io.dumps(model)), dtype=torch.uint8).clone()


def estimator_from_tensor(data: torch.Tensor) -> Any:
    """The estimator back from :func:`estimator_to_tensor`; refuses any type outside
    scikit-learn, NumPy, SciPy, LightGBM, XGBoost and CatBoost before anything of it is built."""
    import skops.io

    raw = data.cpu().numpy().tobytes()
    types = skops.io.get_untrusted_types(data=raw)
    foreign = [t for t in types if t.split(".")[0] not in TRUSTED_ROOTS]
    if foreign:
        raise UserError(
            f"the checkpoint's estimator holds types outside scikit-learn, NumPy, SciPy and the "
            f"boosters "
            f"({', '.join(foreign[:5])}); it is not loaded"
        )
    return skops.io.loads(raw, trusted=types)


def class_probabilities(model: Any, x: np.ndarray, num_classes: int) -> np.ndarray:
    """Probabilities in class-index order (a softmax of decision scores for estimators without
    ``predict_proba``; classes the estimator never saw get 0)."""
    if hasattr(model, "predict_proba"):
        scores = model.predict_proba(x)
    else:
        raw = model.decision_function(x)
        raw = np.stack([-raw, raw], axis=1) if raw.ndim == 1 else raw
        raw = np.exp(raw - raw.max(axis=1, keepdims=True))
        scores = raw / raw.sum(axis=1, keepdims=True)
    out = np.zeros((len(x), num_classes), dtype=np.float32)
    out[:, np.asarray(model.classes_, dtype=int)] = scores
    return out


@contextlib.contextmanager
def openmp_threads() -> Iterator[None]:
    """scikit-learn's OpenMP threads (HistGradientBoosting) capped at cores - 1: with torch's
    threads in the same process, two OpenMP threads on a 2-core machine spun for 24.6 s on a
    fit that takes 0.16 s on one."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(max(1, _cores() - 1), user_api="openmp"):
        yield


def _cores() -> int:
    from mlcycle.core.device import available_cores

    return available_cores()


def _seed() -> int:
    return int(os.environ.get("PL_GLOBAL_SEED", "0"))  # set by seed_everything


class ClassicTabularTask(TableTask):
    """A scikit-learn estimator on the table's preprocessed features, trained by train.py.

    Set ``trainer.max_epochs: 1``: the estimator is fitted once, on the whole train split, when
    the fit starts; the epoch scores it and validation measures it (a longer run stops after the
    first epoch). The linked arguments come from the data; the optimizer arguments of
    :class:`~mlcycle.tasks.base.Task` are accepted and unused.

    Args:
        estimator: a short name (``linear`` (logistic or linear regression), ``svm``, ``knn``,
            ``decision_tree``, ``random_forest``, ``hist_gradient_boosting``, ``lightgbm``,
            ``xgboost``, ``catboost``; each picks the classifier or the regressor) or an import
            path (``sklearn.ensemble.ExtraTreesRegressor``).
        params: the estimator's keyword arguments (``{n_estimators: 300, max_depth: 8}``).
        early_stopping_rounds: a booster (LightGBM, XGBoost, CatBoost; 2000 trees unless
            ``params`` say) stops after this many rounds without improvement on the run's val
            rows; None: every tree. Other estimators ignore it.
        early_stopping_fraction: a booster early-stops on this share of the train rows (held
            out, stratified for classification) instead of the val rows: compare.py sets it, as
            there the val rows are the fold's scored rows. None: the val rows.
    """

    network = "classic"

    def __init__(
        self,
        estimator: str = "random_forest",
        params: dict[str, Any] | None = None,
        early_stopping_rounds: int | None = 50,
        early_stopping_fraction: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.automatic_optimization = False  # nothing to step: the estimator fits in one call
        self.estimator_path = estimator_path(estimator, self.kind)
        self.fitted: Any = None
        self.fit_seconds: float | None = None
        self.trees: int | None = None  # a booster's rounds after early stopping
        if early_stopping_rounds is not None and early_stopping_rounds < 1:
            raise UserError(
                f"model.early_stopping_rounds={early_stopping_rounds} must be at least 1 (or null)"
            )
        if early_stopping_fraction is not None and not 0 < early_stopping_fraction < 1:
            raise UserError(
                f"model.early_stopping_fraction={early_stopping_fraction} must be between 0 and 1"
            )
        build_estimator(estimator, dict(params or {}), self.kind, _seed())  # bad params fail now

    def configure_optimizers(self) -> Any:
        # An optimizer over nothing of the model: Lightning and the learning-rate monitor want
        # one; its steps change nothing.
        return torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.0)

    def on_fit_start(self) -> None:
        if self.fitted is not None:  # resumed: the checkpoint brought it back
            return
        hp = self.hparams
        x, y = self.trainer.datamodule.arrays("train")
        model = build_estimator(hp.estimator, dict(hp.params or {}), self.kind, _seed())
        y = np.asarray(y, dtype=np.float64 if self.regression else np.int64)
        x = np.asarray(x, dtype=np.float32)
        clock = time.perf_counter()
        with warnings.catch_warnings(), openmp_threads():
            warnings.simplefilter("ignore")  # convergence chatter; the val metrics say enough
            if boosted.library(self.estimator_path):
                self._fit_booster(model, x, y)
            else:
                model.fit(x, y)
        self.fit_seconds = round(time.perf_counter() - clock, 3)
        self.fitted = model

    def _fit_booster(self, model: Any, x: np.ndarray, y: np.ndarray) -> None:
        """A booster: early stopping on the run's val rows, the category codes as categories."""
        boosted.check_labels(model, y)
        fraction = self.hparams.get("early_stopping_fraction")
        if fraction:
            x, xv, y, yv = boosted.stopping_split(x, y, fraction, _seed(), self.regression)
            where = f"{len(yv)} held-out train rows"
        else:
            xv, yv = self.trainer.datamodule.arrays("val")
            where = f"{len(yv)} val rows"
        yv = np.asarray(yv, dtype=y.dtype)
        if not self.regression:  # a val class the train split lacks cannot be scored
            seen = np.isin(yv, np.unique(y))
            xv, yv = xv[seen], yv[seen]
        categorical = list(range(self.num_numeric, self.num_features))
        rounds = self.hparams.early_stopping_rounds
        boosted.fit_booster(model, x, y, (np.asarray(xv, np.float32), yv), categorical, rounds)
        self.trees = boosted.trees_used(model)
        native = ""
        if categorical:
            how = "native" if boosted.native_categories(self.estimator_path) else "as numbers"
            native = f", {len(categorical)} categorical column(s) {how}"
        stop = f"early stopping on {where}" if rounds and len(yv) else "no early stop"
        print(f"{self.hparams.estimator}: {self.trees} boosting rounds ({stop}{native})")

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        if self.fitted is None:
            raise UserError("the classic model is not fitted; train it with train.py first")
        rows = x.detach().float().cpu().numpy()
        with openmp_threads():
            if self.regression:
                out = np.asarray(self.fitted.predict(rows), dtype=np.float32).reshape(-1)
            else:
                out = class_probabilities(self.fitted, rows, self.hparams.num_classes)
        return torch.from_numpy(out).to(x.device)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        out = self.outputs(batch)
        loss = self.score_loss(out)
        # A step that changes nothing, so the step count (and with it the checkpoints, which
        # are written only when it moved) advances as for any model.
        self.optimizers().step()
        if self.trees is not None:  # a booster: the rounds early stopping kept
            self.log("train/trees", float(self.trees), on_step=False, on_epoch=True)
        if self.regression:
            return self.log_train_loss(loss, batch_size=len(out["target"]))
        self.train_acc.update(out["probs"], out["target"].long())
        return self.log_train_loss(loss, batch_size=len(out["target"]), acc=self.train_acc)

    def on_train_epoch_end(self) -> None:
        if self.fit_seconds is not None:
            self.log("train/fit_seconds", self.fit_seconds)
        self.trainer.should_stop = True  # one epoch: more would score the same model again

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.fitted is not None:
            checkpoint["estimator_skops"] = estimator_to_tensor(self.fitted)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        data = checkpoint.get("estimator_skops")
        if data is not None:
            self.fitted = estimator_from_tensor(data)
