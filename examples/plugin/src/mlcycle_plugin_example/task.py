"""Multi-label image classification: any registered architecture, one sigmoid per label, BCE.

The task reuses ``ImageClassificationData`` unchanged. There, each distinct label string is a
class, so an image labelled ``cat|dog`` belongs to the class ``"cat|dog"``; the task splits
those class names on ``|`` into the labels and turns each class index into a multi-hot target
(``multi_hot[class_index]``). The data module's stratified split then keeps every label
combination in every split, and no framework code knows about multiple labels.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn import functional as F
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import (
    MultilabelExactMatch,
    MultilabelF1Score,
    MultilabelHammingDistance,
    MultilabelPrecision,
    MultilabelRecall,
)

from mlcycle.callbacks.chance import Chance
from mlcycle.core.errors import UserError
from mlcycle.models import build_model
from mlcycle.tasks.base import Monitor, Task, register_task

SEPARATOR = "|"


def split_labels(class_names: list[str], separator: str = SEPARATOR) -> list[str]:
    """The labels that the ``separator``-joined class names are made of, sorted."""
    return sorted({part for name in class_names for part in _parts(name, separator)})


def multi_hot_table(
    class_names: list[str], labels: list[str], separator: str = SEPARATOR
) -> torch.Tensor:
    """``(classes, labels)`` float table: row ``c`` is the multi-hot target of class ``c``."""
    column = {label: j for j, label in enumerate(labels)}
    table = torch.zeros(len(class_names), len(labels))
    for i, name in enumerate(class_names):
        for part in _parts(name, separator):
            table[i, column[part]] = 1.0
    return table


def _parts(name: str, separator: str) -> list[str]:
    return [p.strip() for p in name.split(separator) if p.strip()]


def multilabel_metrics(num_labels: int, threshold: float) -> MetricCollection:
    """Macro F1, precision and recall over labels, exact-match ratio, Hamming distance, and
    F1 per label."""
    return MetricCollection(
        {
            "f1": MultilabelF1Score(num_labels, threshold, average="macro"),
            "precision": MultilabelPrecision(num_labels, threshold, average="macro"),
            "recall": MultilabelRecall(num_labels, threshold, average="macro"),
            "exact_match": MultilabelExactMatch(num_labels, threshold),
            "hamming": MultilabelHammingDistance(num_labels, threshold),
            "f1_per_label": MultilabelF1Score(num_labels, threshold, average=None),
        }
    )


def flatten(values: dict[str, torch.Tensor], labels: list[str], prefix: str) -> dict[str, float]:
    """``{"f1_per_label": tensor([...])}`` becomes ``{"val/f1/<label>": ...}`` next to the scalars."""
    flat = {}
    for name, value in values.items():
        if name == "f1_per_label":
            flat.update(
                {f"{prefix}/f1/{k}": float(v) for k, v in zip(labels, value.tolist(), strict=True)}
            )
        else:
            flat[f"{prefix}/{name}"] = float(value)
    return flat


@register_task
class MultiLabelTask(Task):
    """Tag images with any number of labels, using any registered classification architecture.

    ``num_classes``, ``in_channels`` and ``class_names`` come from the data module (linked by
    the CLI); here a class name is a ``|``-joined set of labels (``["cat", "cat|dog", "dog"]``),
    and the architecture gets one output per label. The shared arguments (``arch_options``,
    ``weights``, ``lr``, ``optimizer``, ``scheduler``, ...) are :class:`~mlcycle.tasks.base.Task`'s.

    Args:
        arch: a registered classification architecture (``tiny_dwnet``, ``small_cnn``, ...).
        threshold: the probability from which a label counts as present.
    """

    task_name = "multilabel"  # the key of its evaluator and exporter
    monitor = Monitor("val/f1", "max")  # macro F1 over labels
    epoch_metrics = ("val/f1", "val/exact_match")

    def __init__(self, arch: str = "tiny_dwnet", threshold: float = 0.5, **kwargs: Any) -> None:
        super().__init__(arch=arch, **kwargs)
        if not 0 < threshold < 1:
            raise UserError(f"model.threshold={threshold} must be in (0, 1)")
        self.labels = split_labels(self.class_names)
        if len(self.labels) < 2:
            raise UserError(
                f"multi-label classification needs at least two labels; the data has {self.labels}"
            )
        # Rebuilt from class_names on load, so not part of the checkpoint.
        table = multi_hot_table(self.class_names, self.labels)
        self.register_buffer("multi_hot", table, persistent=False)
        hp, n = self.hparams, len(self.labels)
        self.model = build_model(
            arch, hp.in_channels, n, weights=hp.weights, options=hp.arch_options
        )
        self.train_loss, self.val_loss = MeanMetric(), MeanMetric()
        self.val_metrics = multilabel_metrics(n, threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, labels)`` logits; a sigmoid of each gives that label's probability."""
        return self.model(x)

    def targets(self, class_index: torch.Tensor) -> torch.Tensor:
        """The data module's class indices as ``(N, labels)`` multi-hot targets."""
        return self.multi_hot[class_index]

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y, _ = batch
        loss = F.binary_cross_entropy_with_logits(self(x), self.targets(y))
        self.train_loss.update(loss.detach())
        self.log("train/loss", self.train_loss, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y, _ = batch
        logits, target = self(x).float(), self.targets(y)
        self.val_loss.update(F.binary_cross_entropy_with_logits(logits, target))
        self.val_metrics.update(logits.sigmoid(), target.long())

    def on_validation_epoch_end(self) -> None:
        values = flatten(self.val_metrics.compute(), self.labels, "val")
        values["val/loss"] = float(self.val_loss.compute())
        self.val_metrics.reset()
        self.val_loss.reset()
        self.log_epoch(values, prog_bar={"val/loss", "val/f1", "val/exact_match"})

    def predict_step(self, batch: Any, batch_idx: int) -> dict[str, torch.Tensor]:
        x, y, index = batch
        return {"probs": self(x).float().sigmoid(), "target": self.targets(y), "index": index}

    def chance_level(self, datamodule: Any) -> Chance | None:
        """Macro F1 of a model that learned nothing: tagging every image with every label
        (F1 ``2p / (1 + p)`` for a label on a share ``p`` of the training images), or with none."""
        counts = torch.tensor(getattr(datamodule, "class_counts", []), dtype=torch.float32)
        if counts.numel() != len(self.multi_hot) or counts.sum() == 0:
            return None
        share = (counts @ self.multi_hot.cpu()) / counts.sum()
        every = float((2 * share / (1 + share)).mean())
        return Chance("val/f1", {"every label": every, "no label": 0.0})
