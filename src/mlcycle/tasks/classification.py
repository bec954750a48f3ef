"""Image classification: any registered architecture, cross-entropy, macro metrics per stage."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from lightning.pytorch import Callback
from torch.nn import functional as F
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

from mlcycle.callbacks import ConfusionMatrix, Misclassified
from mlcycle.callbacks.baselines import class_probs, scored
from mlcycle.callbacks.chance import (
    Chance,
    chance_or_none,
    classification_acc,
    classification_f1,
    uniform_loss,
)
from mlcycle.core.errors import UserError
from mlcycle.models import build_model
from mlcycle.models.registry import CLASSIFICATION_MODELS, preprocessing
from mlcycle.tasks.base import Monitor, Task, flatten_per_class, register_task
from mlcycle.tasks.mixing import BatchMix, check_mixing
from mlcycle.tasks.tta import flip_average, tta_of, tta_views


def classification_metrics(num_classes: int, per_class: bool = False) -> MetricCollection:
    """Overall accuracy and macro precision, recall and F1, plus F1 per class; with
    ``per_class``, precision and recall per class as well. The one definition of these metrics:
    training logs them, ``evaluate.py`` reports them, export verification compares with them."""
    metrics = {
        "acc": MulticlassAccuracy(num_classes, average="micro"),
        "precision": MulticlassPrecision(num_classes, average="macro"),
        "recall": MulticlassRecall(num_classes, average="macro"),
        "f1": MulticlassF1Score(num_classes, average="macro"),
        "f1_per_class": MulticlassF1Score(num_classes, average=None),
    }
    if per_class:
        metrics["precision_per_class"] = MulticlassPrecision(num_classes, average=None)
        metrics["recall_per_class"] = MulticlassRecall(num_classes, average=None)
    return MetricCollection(metrics)


def flatten_metrics(
    values: dict[str, torch.Tensor], class_names: list[str], prefix: str
) -> dict[str, float]:
    """``{"f1_per_class": tensor([...])}`` becomes ``{"val/f1/<class>": ...}`` next to the scalars."""
    return flatten_per_class(values, class_names, prefix)


def class_baselines(train: Any, target: Any, num_classes: int) -> dict[str, dict[str, float]]:
    """The classification baselines fitted on ``train`` labels, scored on ``target`` labels by
    :func:`classification_metrics` (``error`` is 1 - accuracy); empty without targets."""
    if len(target) == 0:
        return {}
    y = torch.as_tensor(np.asarray(target, dtype=np.int64))

    def score(probs: np.ndarray) -> dict[str, float]:
        values = classification_metrics(num_classes)(torch.from_numpy(probs), y)
        return {**values, "error": 1 - float(values["acc"])}

    return scored(class_probs(np.asarray(train), len(y), num_classes), score)


CHANCE_SCORES = {"val/f1": classification_f1, "val/acc": classification_acc}


@register_task
class ClassificationTask(Task):
    """Classify images with any registered architecture, with cross-entropy.

    The shared arguments (``num_classes``, ``in_channels`` and ``class_names`` from the data;
    ``arch_options``, ``weights``, ``lr``, ``optimizer``, ...) are :class:`~mlcycle.tasks.base.Task`'s.

    Args:
        arch: a registered architecture: ``small_cnn``, ``resnet18``, ``vit_b_16``, ..., or any
            timm model as ``timm/<name>`` (``timm/convnext_nano``; see docs/pretrained.md).
        label_smoothing: cross-entropy label smoothing in [0, 1).
        class_weights: ``balanced`` (inverse class frequency), a list of per-class weights, or none.
        mixup: mix training batches with MixUp, this Beta alpha (``0.2``); none: off.
        cutmix: mix training batches with CutMix, this Beta alpha (``1.0``); with ``mixup``
            too, each batch gets one or the other. The targets become class probabilities;
            ``train/acc`` counts the class with the largest share.
        mix_prob: the chance that a training batch is mixed (with ``mixup`` or ``cutmix``).
        tta: test-time augmentation for evaluation and export: ``flip`` (horizontal),
            ``hflip``, ``vflip`` or a list; the mean softmax over the original and the flips.
    """

    task_name = "classification"
    monitor = Monitor("val/f1", "max")  # the checkpoint and galleries follow this metric

    def __init__(
        self,
        arch: str = "small_cnn",
        label_smoothing: float = 0.0,
        class_weights: Literal["balanced"] | list[float] | None = None,
        mixup: float | None = None,
        cutmix: float | None = None,
        mix_prob: float = 1.0,
        tta: str | list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(arch=arch, **kwargs)
        if not 0 <= label_smoothing < 1:
            raise UserError(f"model.label_smoothing={label_smoothing} must be in [0, 1)")
        check_mixing(mixup, cutmix, mix_prob)
        tta_views(tta)  # a bad value fails now
        hp = self.hparams
        start = self.start_weights()
        self.model = build_model(
            arch,
            hp.in_channels,
            hp.num_classes,
            weights=start["weights"],
            options=hp.arch_options,
            pretrained=start["pretrained"],
        )
        self.loss_weight: torch.Tensor | None = None  # set in setup(); not checkpointed
        self.train_loss, self.val_loss = MeanMetric(), MeanMetric()
        self.train_acc = MulticlassAccuracy(hp.num_classes, average="micro")
        self.val_metrics = classification_metrics(hp.num_classes)
        self.mix = BatchMix(hp.num_classes, mixup, cutmix, mix_prob)

    @classmethod
    def weights_preprocessing(cls, init_args: dict[str, Any]) -> dict[str, Any] | None:
        a = init_args
        return preprocessing(
            CLASSIFICATION_MODELS,
            a.get("arch") or "small_cnn",
            a.get("weights"),
            a.get("arch_options"),
            None,
            bool(a.get("pretrained")),
        )

    def configure_callbacks(self) -> list[Callback]:
        monitor, mode = self.monitor
        return [
            ConfusionMatrix(monitor, mode),
            Misclassified(monitor=monitor, mode=mode),
            *super().configure_callbacks(),
        ]

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.hparams.class_weights is not None:
            self.loss_weight = self._class_weights()

    def _class_weights(self) -> torch.Tensor:
        hp = self.hparams
        if hp.class_weights == "balanced":
            counts = getattr(self.trainer.datamodule, "class_counts", None)
            if not counts:
                raise UserError(
                    "model.class_weights=balanced needs a data module with class_counts"
                )
            counts = torch.tensor(counts, dtype=torch.float32).clamp(min=1)
            return counts.sum() / (len(counts) * counts)
        if len(hp.class_weights) != hp.num_classes:
            raise UserError(
                f"model.class_weights has {len(hp.class_weights)} values; the data has {hp.num_classes} classes"
            )
        return torch.tensor(hp.class_weights, dtype=torch.float32)

    def chance_level(self, datamodule: Any) -> Chance | None:
        """The majority class and a uniform guess, on the training split's ``class_counts``."""
        return chance_or_none(self._chance, datamodule)

    def baselines(self, datamodule: Any, split: str = "val") -> dict[str, dict[str, float]]:
        """Majority and stratified (``DummyClassifier``), fitted on the train split's labels."""
        index, code = datamodule.index, {n: i for i, n in enumerate(self.class_names)}
        train, target = (
            [code[index.samples[p].label] for p in index.positions[s]] for s in ("train", split)
        )
        return class_baselines(train, target, self.hparams.num_classes)

    def _chance(self, datamodule: Any) -> Chance | None:
        metric = self.monitor.metric
        score = CHANCE_SCORES.get(metric)
        counts = list(datamodule.class_counts or []) if score is not None else []
        if not counts:
            return None
        return Chance(metric, score(counts), uniform_loss(counts), "misclassified.png")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        weight = None if self.loss_weight is None else self.loss_weight.to(logits.device)
        return F.cross_entropy(
            logits, target, weight=weight, label_smoothing=self.hparams.label_smoothing
        )

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y, _ = batch
        if self.mix:
            x, y = self.mix(x, y)  # y: class probabilities
        logits = self(x)
        # the predicted class, as the accuracy takes it from the logits (its top 1)
        self.defer_update(
            self.train_acc, logits.detach().argmax(1), y.argmax(1) if y.ndim == 2 else y
        )
        return self.log_train_loss(self.loss(logits, y), acc=self.train_acc)

    def validation_step(self, batch: Any, batch_idx: int) -> dict[str, torch.Tensor]:
        x, y, index = batch
        logits = self(x).float()
        self.val_loss.update(self.loss(logits, y))
        self.val_metrics.update(logits, y)
        return {"probs": logits.softmax(dim=1), "target": y, "index": index}

    def on_validation_epoch_end(self) -> None:
        self.log_validation_epoch(
            self.val_metrics, flatten_metrics, {"val/loss", "val/f1", "val/acc"}
        )

    def predict_step(self, batch: Any, batch_idx: int) -> dict[str, torch.Tensor]:
        """``probs`` (N, K) softmax scores (with ``tta``, their mean over the flips),
        ``target`` (N,) labels, ``index`` (N,) positions."""
        x, y, index = batch
        flips = tta_of(self)
        logits = self(x) if flips is None else flip_average(self, x, flips)
        return {"probs": logits.float().softmax(dim=1), "target": y, "index": index}
