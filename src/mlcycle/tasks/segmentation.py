"""Semantic segmentation: per-pixel cross-entropy (plus optional Dice loss), IoU per class."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from lightning.pytorch import Callback
from torch.nn import functional as F
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassF1Score,
    MulticlassJaccardIndex,
)

from mlcycle.callbacks.chance import Chance, chance_or_none, segmentation_iou, uniform_loss
from mlcycle.callbacks.segmentation_gallery import SegmentationGallery
from mlcycle.core.errors import UserError
from mlcycle.models.registry import SEGMENTATION_MODELS, build_architecture, preprocessing
from mlcycle.reports.mask_box_errors import image_iou
from mlcycle.tasks.base import Monitor, Task, flatten_per_class, register_task
from mlcycle.tasks.tta import flip_average, tta_of, tta_views

MASK_SAMPLE = 256  # training masks read to count the pixels of each class (chance level)


def segmentation_metrics(num_classes: int, ignore_index: int) -> MetricCollection:
    """Mean IoU (classes present in target or prediction), IoU per class, pixel accuracy and
    Dice (the per-pixel F1, macro), over all pixels of the split; ``ignore_index`` left out."""
    kwargs = {"num_classes": num_classes, "ignore_index": ignore_index}
    return MetricCollection(
        {
            "iou": MulticlassJaccardIndex(average="macro", **kwargs),
            "iou_per_class": MulticlassJaccardIndex(average=None, **kwargs),
            "acc": MulticlassAccuracy(average="micro", **kwargs),
            "dice": MulticlassF1Score(average="macro", **kwargs),
        }
    )


def flatten_segmentation(
    values: dict[str, torch.Tensor], class_names: list[str], prefix: str
) -> dict[str, float]:
    """``iou_per_class`` becomes ``<prefix>/iou/<class>``; ``<prefix>/error`` is 1 - pixel accuracy."""
    return flatten_per_class(values, class_names, prefix)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """1 - soft Dice, averaged over classes; ignored pixels count for nothing."""
    num_classes = logits.shape[1]
    valid = (target != ignore_index).unsqueeze(1)
    probs = logits.float().softmax(dim=1) * valid
    onehot = F.one_hot(target.clamp(0, num_classes - 1), num_classes).permute(0, 3, 1, 2) * valid
    dims = (0, 2, 3)
    intersection = (probs * onehot).sum(dims)
    total = probs.sum(dims) + onehot.sum(dims)
    return 1 - ((2 * intersection + 1) / (total + 1)).mean()


def logits_at_input(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``net``'s logits (torchvision's ``{"out": ...}`` unwrapped), resized to ``x``'s H, W."""
    out = net(x)
    if isinstance(out, dict):
        out = out["out"]
    if out.shape[-2:] != x.shape[-2:]:
        out = F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)
    return out


@register_task
class SegmentationTask(Task):
    """Label every pixel with any registered segmentation architecture.

    The shared arguments (``num_classes``, background included, ``in_channels`` and
    ``class_names`` from the data; ``lr``, ``optimizer``, ...) are :class:`~mlcycle.tasks.base.Task`'s.

    Args:
        arch: ``unet`` (``arch_options: {encoder: timm/resnet18}`` for a timm encoder),
            ``fcn_resnet50``, ``deeplabv3_mobilenet_v3_large``, ``lraspp_mobilenet_v3_large``.
        backbone_weights: a torchvision backbone's classifier weights: a name
            (``IMAGENET1K_V1``, ``DEFAULT``) or a local state-dict file.
        dice_weight: weight of the Dice loss added to the cross-entropy (0: none).
        class_weights: one cross-entropy weight per class, or none.
        ignore_index: the mask value that counts for nothing (the same as ``data.ignore_index``).
        gallery_size: how many of the worst validation images ``worst_iou.png`` shows.
        tta: test-time augmentation for evaluation and export: ``flip`` (horizontal),
            ``hflip``, ``vflip`` or a list; each flip's logits are flipped back and the
            softmax averaged per pixel.
    """

    task_name = "segmentation"
    monitor = Monitor("val/iou", "max")  # the checkpoint and the gallery follow this metric
    starts_from = ("classification",)  # init_from: a classifier run's backbone

    def __init__(
        self,
        arch: str = "unet",
        backbone_weights: str | None = None,
        dice_weight: float = 0.0,
        class_weights: list[float] | None = None,
        ignore_index: int = 255,
        gallery_size: int = 12,
        tta: str | list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(arch=arch, **kwargs)
        hp = self.hparams
        tta_views(tta)  # a bad value fails now
        if dice_weight < 0:
            raise UserError(f"model.dice_weight={dice_weight} must be 0 or more")
        if class_weights is not None and len(class_weights) != hp.num_classes:
            raise UserError(
                f"model.class_weights has {len(class_weights)} values; the data has {hp.num_classes} classes"
            )
        self.model = build_architecture(
            SEGMENTATION_MODELS,
            arch,
            hp.in_channels,
            hp.num_classes,
            options=hp.arch_options,
            **self.start_weights(),
        )
        weight = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        self.register_buffer("loss_weight", weight, persistent=False)
        self.train_loss, self.val_loss = MeanMetric(), MeanMetric()
        self.train_acc = MulticlassAccuracy(
            hp.num_classes, average="micro", ignore_index=ignore_index
        )
        self.val_metrics = segmentation_metrics(hp.num_classes, ignore_index)

    @classmethod
    def weights_preprocessing(cls, init_args: dict[str, Any]) -> dict[str, Any] | None:
        a = init_args
        return preprocessing(
            SEGMENTATION_MODELS,
            a.get("arch") or "unet",
            a.get("weights"),
            a.get("arch_options"),
            a.get("backbone_weights"),
            bool(a.get("pretrained")),
        )

    def configure_callbacks(self) -> list[Callback]:
        monitor, mode = self.monitor
        gallery = SegmentationGallery(self.hparams.gallery_size, monitor, mode)
        return [gallery, *super().configure_callbacks()]

    def setup(self, stage: str) -> None:
        data = getattr(self.trainer, "datamodule", None)
        theirs = getattr(data, "ignore_index", self.hparams.ignore_index)
        if theirs != self.hparams.ignore_index:
            raise UserError(
                f"model.ignore_index={self.hparams.ignore_index} differs from data.ignore_index={theirs}; set both alike"
            )

    def chance_level(self, datamodule: Any) -> Chance | None:
        """The majority class everywhere and a uniform guess per pixel, on the pixels of each
        class in (up to ``MASK_SAMPLE``) training masks."""
        return chance_or_none(self._chance, datamodule)

    def baselines(self, datamodule: Any, split: str = "val") -> dict[str, dict[str, float]]:
        """``empty``: every pixel background (class 0), scored on the split's masks as
        validation scores a prediction (:func:`segmentation_metrics`)."""
        k, ignore = self.hparams.num_classes, self.hparams.ignore_index
        metrics = segmentation_metrics(k, ignore)
        positions = datamodule.index.positions[split]
        for p in positions:
            mask = torch.as_tensor(np.asarray(datamodule.raw_pair(p)[1]), dtype=torch.long)[None]
            metrics.update(torch.zeros_like(mask), mask)
        if not len(positions):
            return {}
        flat = flatten_segmentation(metrics.compute(), self.class_names, split)
        return {"empty": {n.split("/", 1)[1]: v for n, v in flat.items() if n.count("/") == 1}}

    def _chance(self, datamodule: Any) -> Chance | None:
        counts = pixel_counts(datamodule, self.hparams.ignore_index)
        if not counts:
            return None
        return Chance("val/iou", segmentation_iou(counts), uniform_loss(counts), "worst_iou.png")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, num_classes, H, W)`` logits at the input's resolution."""
        return logits_at_input(self.model, x)

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        hp = self.hparams
        loss = F.cross_entropy(
            logits, target, weight=self.loss_weight, ignore_index=hp.ignore_index
        )
        if hp.dice_weight:
            loss = loss + hp.dice_weight * dice_loss(logits, target, hp.ignore_index)
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y, _ = batch
        logits = self(x)
        self.train_acc.update(logits.detach().argmax(1), y)
        return self.log_train_loss(self.loss(logits, y), acc=self.train_acc)

    def validation_step(self, batch: Any, batch_idx: int) -> dict[str, torch.Tensor]:
        x, y, index = batch
        logits = self(x).float()
        self.val_loss.update(self.loss(logits, y))
        pred = logits.argmax(1)
        self.val_metrics.update(pred, y)
        iou = image_iou(pred.cpu(), y.cpu(), self.hparams.num_classes, self.hparams.ignore_index)
        return {"pred": pred, "iou": iou, "index": index}

    def on_validation_epoch_end(self) -> None:
        self.log_validation_epoch(
            self.val_metrics, flatten_segmentation, {"val/loss", "val/iou", "val/acc"}
        )

    def predict_step(self, batch: Any, batch_idx: int) -> dict[str, torch.Tensor]:
        """``pred`` (N, H, W) class per pixel, ``target`` (N, H, W), ``index`` (N,), and ``loss``
        (the batch's mean loss, a scalar). With ``tta``, over the mean softmax of the flips."""
        x, y, index = batch
        flips = tta_of(self)
        logits = (self(x) if flips is None else flip_average(self, x, flips, dense=True)).float()
        return {"pred": logits.argmax(1), "target": y, "index": index, "loss": self.loss(logits, y)}


def pixel_counts(datamodule: Any, ignore_index: int) -> list[int] | None:
    """Pixels per class in (up to ``MASK_SAMPLE``) training masks; ``ignore_index`` left out."""
    k = datamodule.num_classes
    total = np.zeros(k, dtype=np.int64)
    positions = datamodule.index.positions["train"]
    step = max(1, len(positions) // MASK_SAMPLE)
    for p in positions[::step][:MASK_SAMPLE]:
        mask = np.asarray(datamodule.raw_pair(p)[1]).ravel()
        total += np.bincount(mask[(mask != ignore_index) & (mask < k)], minlength=k)[:k]
    return total.tolist() if total.sum() else None
