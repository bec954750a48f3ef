"""Tasks on tables: the shared part (linked feature counts, metrics, outputs, callbacks) and
:class:`TabularTask`, an MLP with embeddings for the categorical columns.

Both kinds of table task, the MLP here and the scikit-learn models of
:mod:`mlcycle.tables.classic`, log the same metrics under the same keys, return the same
``predict_step`` outputs (so one evaluator and one exporter serve both) and add the same
callbacks: worst predictions as a table, a confusion matrix (classification) or a residual plot
(regression).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from lightning.pytorch import Callback
from torch.nn import functional as F
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from mlcycle.callbacks.chance import Chance, classification_f1, uniform_loss
from mlcycle.core.errors import UserError
from mlcycle.tables.metrics import EPOCH_METRICS, flatten, tabular_metrics
from mlcycle.tables.mlp import TabularMLP
from mlcycle.tasks.base import Monitor, Task, register_task

TABLE_LINKS = ("num_features", "num_numeric", "cardinalities", "task_kind")


def resolve_kind(task_kind: str | None, num_classes: int) -> str:
    """``task_kind`` as given, else regression for one output and classification otherwise."""
    if task_kind is None:
        return "regression" if num_classes == 1 else "classification"
    if task_kind not in ("classification", "regression"):
        raise UserError(f"model.task_kind='{task_kind}' must be classification or regression")
    return task_kind


class TableTask(Task):
    """What every table task shares. The linked arguments come from the data module
    (``mlcycle.tables.TabularData``); never write them in a config.

    A subclass defines ``scores(x)``: class probabilities [N, K] (classification) or
    predictions [N] in the target's units (regression), and its training.

    Args:
        num_features: columns of the preprocessed feature matrix (from the data).
        num_numeric: leading numeric columns; the rest hold one categorical code each (from the data).
        cardinalities: codes per categorical column, 0 (unseen or missing) included (from the data).
        task_kind: ``classification`` or ``regression`` (from the data; unset: regression when
            ``num_classes`` is 1).
        in_channels: not used by tables (the image tasks' channels); kept for the shared links.
    """

    task_name = "tabular"
    network = "mlp"  # hparams.arch: what the subclass trains
    monitor = Monitor("val/f1", "max")  # regression monitors val/rmse (min), set per instance
    # What a regression instance monitors: code that has only the class and the data (compare,
    # tune) reads it here; code that has a run reads the run's metrics.json.
    regression_monitor = Monitor("val/rmse", "min")
    epoch_metrics = EPOCH_METRICS["classification"]
    linked = (*Task.linked, *TABLE_LINKS)

    def __init__(
        self,
        num_features: int | None = None,
        num_numeric: int | None = None,
        cardinalities: list[int] | None = None,
        task_kind: Literal["classification", "regression"] | None = None,
        in_channels: int | None = None,
        **kwargs: Any,
    ) -> None:
        num_features = int(num_features if num_features is not None else in_channels or 1)
        # The network is the task's own (an image architecture name carried over from the
        # default model config means nothing here).
        kwargs["arch"] = self.network
        super().__init__(in_channels=num_features, **kwargs)
        hp = self.hparams
        hp.arch, hp.in_channels = self.network, num_features  # as built, for the run record
        self.kind = resolve_kind(task_kind, hp.num_classes)
        self.cardinalities = [int(n) for n in cardinalities or []]
        self.num_numeric = int(
            num_numeric if num_numeric is not None else num_features - len(self.cardinalities)
        )
        if self.num_numeric < 0 or self.num_numeric + len(self.cardinalities) != num_features:
            raise UserError(
                f"the table has {num_features} feature columns, but {self.num_numeric} numeric and "
                f"{len(self.cardinalities)} categorical ones were linked; rebuild the data"
            )
        self.num_features = num_features
        if self.kind == "regression":
            self.monitor = self.regression_monitor
            self.epoch_metrics = EPOCH_METRICS["regression"]
            self.class_names = []
        elif hp.num_classes < 2:
            raise UserError(
                f"classification needs at least 2 classes; the data has {hp.num_classes}"
            )
        # Regression losses are computed on the standardized target (the train split's mean and
        # std): 1.0 is the loss of predicting the mean, whatever the target's units.
        self.register_buffer("target_mean", torch.zeros(()))
        self.register_buffer("target_std", torch.ones(()))
        self.train_loss, self.val_loss = MeanMetric(), MeanMetric()
        self.train_acc = MulticlassAccuracy(max(hp.num_classes, 2), average="micro")
        self.val_metrics = tabular_metrics(self.kind, hp.num_classes)

    @property
    def regression(self) -> bool:
        return self.kind == "regression"

    # --- what a subclass provides -----------------------------------------------------------

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """Probabilities [N, K] (classification) or predictions [N] (regression)."""
        raise NotImplementedError

    # --- shared -------------------------------------------------------------------------------

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.regression:
            y = np.asarray(self.trainer.datamodule.arrays("train")[1], dtype=np.float64)
            self.target_mean.fill_(float(y.mean()))
            self.target_std.fill_(float(y.std()) or 1.0)

    def standardized(self, values: torch.Tensor) -> torch.Tensor:
        return (values.float() - self.target_mean) / self.target_std

    def outputs(self, batch: Any) -> dict[str, torch.Tensor]:
        """What validation, prediction and the callbacks see: ``probs`` or ``pred``, with
        ``target`` and ``index``."""
        x, y, index = batch
        scores = self.scores(x).float()
        key = "pred" if self.regression else "probs"
        return {key: scores, "target": y, "index": index}

    def score_loss(self, out: dict[str, torch.Tensor]) -> torch.Tensor:
        """The loss of finished outputs: NLL of the probabilities, or the MSE on the
        standardized target."""
        if self.regression:
            return F.mse_loss(self.standardized(out["pred"]), self.standardized(out["target"]))
        return F.nll_loss(out["probs"].clamp_min(1e-12).log(), out["target"].long())

    def update_metrics(self, out: dict[str, torch.Tensor]) -> None:
        if self.regression:
            self.val_metrics.update(out["pred"], out["target"].float())
        else:
            self.val_metrics.update(out["probs"], out["target"].long())

    def validation_step(self, batch: Any, batch_idx: int) -> dict[str, torch.Tensor]:
        out = self.outputs(batch)
        self.val_loss.update(self.validation_loss(batch, out))
        self.update_metrics(out)
        return out

    def validation_loss(self, batch: Any, out: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.score_loss(out)

    def on_validation_epoch_end(self) -> None:
        self.log_validation_epoch(self.val_metrics, flatten, {"val/loss", *self.epoch_metrics[:2]})

    def predict_step(self, batch: Any, batch_idx: int) -> dict[str, torch.Tensor]:
        """``probs`` (N, K) or ``pred`` (N,), ``target`` (N,), ``index`` (N,) row positions."""
        return self.outputs(batch)

    def configure_callbacks(self) -> list[Callback]:
        from mlcycle.callbacks import ConfusionMatrix
        from mlcycle.tables.callbacks import Residuals, WorstRows

        monitor, mode = self.monitor
        found: list[Callback] = [WorstRows(monitor=monitor, mode=mode)]
        found.append(
            Residuals(monitor, mode) if self.regression else ConfusionMatrix(monitor, mode)
        )
        return found

    def baselines(self, datamodule: Any, split: str = "val") -> dict[str, dict[str, float]]:
        """Majority and stratified (classification), mean and median (regression)."""
        from mlcycle.tables.baselines import table_baselines

        return table_baselines(self.regression, self.hparams.num_classes, datamodule, split)

    def chance_level(self, datamodule: Any) -> Chance | None:
        """Classification: the majority class and a uniform guess, from the train split's
        class counts. Regression: none (R^2 is 0 for predicting the mean)."""
        if datamodule is None or self.regression or self.monitor.metric != "val/f1":
            return None
        counts = getattr(datamodule, "class_counts", None)
        if not counts:
            y = np.asarray(datamodule.arrays("train")[1], dtype=np.int64)
            counts = np.bincount(y, minlength=self.hparams.num_classes).tolist()
        return Chance(
            "val/f1", classification_f1(counts), uniform_loss(counts), "worst_predictions.csv"
        )


@register_task
class TabularTask(TableTask):
    """An MLP on a table: numeric features, an embedding per categorical code column, hidden
    layers with batch norm and dropout. Cross-entropy for classification (macro F1 and
    accuracy), MSE or Huber for regression (RMSE, MAE, R^2; on the standardized target).

    The linked arguments (``num_classes``, ``class_names``, ``num_features``, ``num_numeric``,
    ``cardinalities``, ``task_kind``) come from the data; the optimizer ones (``lr``,
    ``optimizer``, ``scheduler``, ...) are :class:`~mlcycle.tasks.base.Task`'s.

    Args:
        hidden: widths of the hidden layers.
        dropout: dropout after every hidden layer, in [0, 1).
        batch_norm: batch normalization after every hidden linear layer.
        max_embedding: the widest embedding of a categorical column (fastai's rule below it).
        loss: ``auto`` (cross-entropy for classification, MSE for regression),
            ``cross_entropy``, ``mse`` or ``huber``.
        huber_delta: where the Huber loss turns from squared to linear, in standard deviations
            of the target.
        label_smoothing: cross-entropy label smoothing in [0, 1).
    """

    def __init__(
        self,
        hidden: list[int] | None = None,
        dropout: float = 0.1,
        batch_norm: bool = True,
        max_embedding: int = 16,
        loss: Literal["auto", "cross_entropy", "mse", "huber"] = "auto",
        huber_delta: float = 1.0,
        label_smoothing: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not 0 <= dropout < 1:
            raise UserError(f"model.dropout={dropout} must be in [0, 1)")
        if not 0 <= label_smoothing < 1:
            raise UserError(f"model.label_smoothing={label_smoothing} must be in [0, 1)")
        wanted = {
            "classification": ("auto", "cross_entropy"),
            "regression": ("auto", "mse", "huber"),
        }
        if loss not in wanted[self.kind]:
            raise UserError(
                f"model.loss='{loss}' does not fit {self.kind}; use one of {', '.join(wanted[self.kind])}"
            )
        hidden = [128, 64] if hidden is None else [int(h) for h in hidden]
        if any(h < 1 for h in hidden):
            raise UserError(f"model.hidden={hidden}: every layer needs at least one unit")
        self.model = TabularMLP(
            self.num_numeric,
            self.cardinalities,
            1 if self.regression else self.hparams.num_classes,
            hidden=hidden,
            dropout=dropout,
            batch_norm=batch_norm,
            max_embedding=max_embedding,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [N, K] (classification) or the standardized prediction [N, 1] (regression)."""
        return self.model(x)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        raw = self(x).float()
        if self.regression:
            return raw[:, 0] * self.target_std + self.target_mean
        return raw.softmax(dim=1)

    def raw_loss(self, raw: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        hp = self.hparams
        if not self.regression:
            return F.cross_entropy(raw.float(), y.long(), label_smoothing=hp.label_smoothing)
        target = self.standardized(y)
        if hp.loss == "huber":
            return F.huber_loss(raw[:, 0].float(), target, delta=hp.huber_delta)
        return F.mse_loss(raw[:, 0].float(), target)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y, _ = batch
        raw = self(x)
        loss = self.raw_loss(raw, y)
        if self.regression:
            return self.log_train_loss(loss, batch_size=len(y))
        self.train_acc.update(raw.detach().float(), y.long())
        return self.log_train_loss(loss, batch_size=len(y), acc=self.train_acc)

    def validation_loss(self, batch: Any, out: dict[str, torch.Tensor]) -> torch.Tensor:
        x, y, _ = batch
        if self.regression:  # the training loss (MSE or Huber), on the standardized target
            return self.raw_loss(self.standardized(out["pred"])[:, None], y)
        return F.cross_entropy(
            out["probs"].clamp_min(1e-12).log(),
            y.long(),
            label_smoothing=self.hparams.label_smoothing,
        )
