"""Image classification: any registered architecture, cross-entropy, macro metrics per stage."""

from __future__ import annotations

from typing import Any, Literal

import torch
from lightning.pytorch import Callback, LightningModule
from torch.nn import functional as F
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

from mlcycle.callbacks import ConfusionMatrix, Misclassified
from mlcycle.errors import UserError
from mlcycle.models import build_model
from mlcycle.tasks.common import check_common, configure_optimizers


def classification_metrics(num_classes: int) -> MetricCollection:
    """Overall accuracy and macro precision, recall and F1, plus F1 per class."""
    return MetricCollection(
        {
            "acc": MulticlassAccuracy(num_classes, average="micro"),
            "precision": MulticlassPrecision(num_classes, average="macro"),
            "recall": MulticlassRecall(num_classes, average="macro"),
            "f1": MulticlassF1Score(num_classes, average="macro"),
            "f1_per_class": MulticlassF1Score(num_classes, average=None),
        }
    )


def flatten_metrics(
    values: dict[str, torch.Tensor], class_names: list[str], prefix: str
) -> dict[str, float]:
    """``{"f1_per_class": tensor([...])}`` becomes ``{"val/f1/<class>": ...}`` next to the scalars."""
    flat = {}
    for name, value in values.items():
        if name == "f1_per_class":
            for cls, v in zip(class_names, value.tolist(), strict=True):
                flat[f"{prefix}/f1/{cls}"] = float(v)
        else:
            flat[f"{prefix}/{name}"] = float(value)
    flat[f"{prefix}/error"] = 1.0 - flat[f"{prefix}/acc"]
    return flat


class ClassificationTask(LightningModule):
    """Classify images with any registered architecture.

    ``num_classes``, ``in_channels`` and ``class_names`` come from the data module (linked by
    the CLI); they are never written in a config.

    Args:
        num_classes: number of classes (from the data).
        in_channels: image channels (from the data).
        class_names: class names in index order (from the data).
        arch: a registered architecture: ``small_cnn``, ``resnet18``, ``vit_b_16``, ...
        arch_options: extra keyword arguments for the architecture builder.
        weights: a local state-dict file to start from; mismatched layers keep their init.
        lr: peak learning rate.
        weight_decay: weight decay for the optimizer.
        optimizer: a ``torch.optim`` class name: ``AdamW``, ``SGD``, ``Adam``, ...
        optimizer_options: extra optimizer arguments, e.g. ``{momentum: 0.9, nesterov: true}``.
        scheduler: ``cosine`` (per step, with warm-up), ``onecycle`` or ``constant``.
        warmup_epochs: linear warm-up length in epochs (may be fractional).
        label_smoothing: cross-entropy label smoothing in [0, 1).
        class_weights: ``balanced`` (inverse class frequency), a list of per-class weights, or none.
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        class_names: list[str] | None = None,
        arch: str = "small_cnn",
        arch_options: dict[str, Any] | None = None,
        weights: str | None = None,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        optimizer: str = "AdamW",
        optimizer_options: dict[str, Any] | None = None,
        scheduler: Literal["cosine", "onecycle", "constant"] = "cosine",
        warmup_epochs: float = 0.0,
        label_smoothing: float = 0.0,
        class_weights: Literal["balanced"] | list[float] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if not 0 <= label_smoothing < 1:
            raise UserError(f"model.label_smoothing={label_smoothing} must be in [0, 1)")
        check_common(lr, optimizer)  # fail now, not after the data is loaded
        self.class_names = list(class_names or [str(i) for i in range(num_classes)])
        self.model = build_model(
            arch, in_channels, num_classes, weights=weights, options=arch_options
        )
        self.loss_weight: torch.Tensor | None = (
            None  # set in setup(); not a buffer, not checkpointed
        )
        self.train_loss, self.val_loss = MeanMetric(), MeanMetric()
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_metrics = classification_metrics(num_classes)

    monitor = ("val/f1", "max")  # the checkpoint and galleries follow this metric

    def configure_callbacks(self) -> list[Callback]:
        monitor, mode = self.monitor
        return [ConfusionMatrix(monitor, mode), Misclassified(monitor=monitor, mode=mode)]

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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        weight = None if self.loss_weight is None else self.loss_weight.to(logits.device)
        return F.cross_entropy(
            logits, target, weight=weight, label_smoothing=self.hparams.label_smoothing
        )

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y, _ = batch
        logits = self(x)
        loss = self.loss(logits, y)
        self.train_loss.update(loss.detach())
        self.train_acc.update(logits.detach(), y)
        self.log("train/loss", self.train_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> dict[str, torch.Tensor]:
        x, y, index = batch
        logits = self(x).float()
        self.val_loss.update(self.loss(logits, y))
        self.val_metrics.update(logits, y)
        return {"probs": logits.softmax(dim=1), "target": y, "index": index}

    def on_validation_epoch_end(self) -> None:
        values = flatten_metrics(self.val_metrics.compute(), self.class_names, "val")
        values["val/loss"] = float(self.val_loss.compute())
        self.val_metrics.reset()
        self.val_loss.reset()
        bar = {"val/loss", "val/f1", "val/acc"}
        # Values are already reduced across processes by torchmetrics; sync_dist keeps DDP quiet.
        self.log_dict({k: v for k, v in values.items() if k in bar}, prog_bar=True, sync_dist=True)
        self.log_dict({k: v for k, v in values.items() if k not in bar}, sync_dist=True)

    def predict_step(self, batch: Any, batch_idx: int) -> dict[str, torch.Tensor]:
        x, y, index = batch
        return {"probs": self(x).float().softmax(dim=1), "target": y, "index": index}

    def configure_optimizers(self) -> Any:
        return configure_optimizers(self)
