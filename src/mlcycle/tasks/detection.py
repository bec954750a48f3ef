"""Object detection: torchvision detectors (and ``fcos_small``), COCO mAP from torchmetrics."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import Callback
from torchmetrics import MeanMetric
from torchmetrics.detection import MeanAveragePrecision

from mlcycle.callbacks.chance import Chance, chance_or_none
from mlcycle.callbacks.detection_gallery import DetectionGallery
from mlcycle.core.errors import UserError
from mlcycle.models.registry import DETECTION_MODELS, build_architecture, preprocessing
from mlcycle.tasks.base import Monitor, Task, register_task

SUMMARY = (
    "map",
    "map_50",
    "map_75",
    "map_small",
    "map_medium",
    "map_large",
    "mar_1",
    "mar_10",
    "mar_100",
)


def detection_metric() -> MeanAveragePrecision:
    """COCO's box mAP, computed by pycocotools through torchmetrics; AP per class as well."""
    metric = MeanAveragePrecision(
        box_format="xyxy", iou_type="bbox", class_metrics=True, backend="pycocotools"
    )
    metric.warn_on_many_detections = False  # COCO scores the best 100 per image, by design
    return metric


def flatten_map(
    values: dict[str, torch.Tensor], class_names: list[str], prefix: str
) -> dict[str, float]:
    """``<prefix>/map``, ``/map_50``, ``/map_75``, ..., and ``<prefix>/ap/<class>`` (AP at IoU
    0.50:0.95) for each class that has objects or detections. -1 means: nothing to score."""
    flat = {f"{prefix}/{k}": float(values[k]) for k in SUMMARY if k in values}
    classes = values["classes"].flatten().tolist()
    per_class = values["map_per_class"].flatten().tolist()
    if len(per_class) == len(classes):
        for c, ap in zip(classes, per_class, strict=True):
            if 0 <= int(c) < len(class_names):
                flat[f"{prefix}/ap/{class_names[int(c)]}"] = float(ap)
    return flat


def to_model_targets(targets: list[dict[str, torch.Tensor]]) -> list[dict[str, torch.Tensor]]:
    """Crowd regions left out; labels shifted by one (0 is the detector's background)."""
    out = []
    for t in targets:
        keep = t["iscrowd"] == 0 if "iscrowd" in t else slice(None)
        out.append({"boxes": t["boxes"][keep], "labels": t["labels"][keep] + 1})
    return out


@register_task
class DetectionTask(Task):
    """Find and classify objects with any registered detector.

    The shared arguments (``num_classes``: object classes, without background; ``in_channels``
    and ``class_names`` from the data; ``lr``, ``optimizer``, ...) are
    :class:`~mlcycle.tasks.base.Task`'s. The detector gets ``num_classes + 1`` outputs (0 =
    background).

    Args:
        arch: ``fcos_small``, ``fasterrcnn_mobilenet_v3_large_fpn``, ``retinanet_resnet50_fpn``,
            ``fcos_resnet50_fpn``, ``ssdlite320_mobilenet_v3_large``.
        backbone_weights: a torchvision backbone's classifier weights: a name
            (``IMAGENET1K_V1``, ``DEFAULT``) or a local state-dict file.
        gallery_size: how many images ``detection_errors.png`` shows.
        gallery_score: the score at which a detection counts in the gallery.

    ``channels_last`` converts the detector's weights (the detector batches the images itself,
    so its convolutions then run channels-last); ``compile`` is refused: a detector takes a
    list of images and returns a varying number of boxes, so it would recompile at every step.
    """

    task_name = "detection"
    monitor = Monitor("val/map", "max")  # COCO's primary metric, AP at IoU 0.50:0.95
    epoch_metrics = ("val/map", "val/map_50")  # shown on each epoch's summary line
    starts_from = ("classification",)  # init_from: a classifier run's backbone

    def __init__(
        self,
        arch: str = "fcos_small",
        backbone_weights: str | None = None,
        gallery_size: int = 12,
        gallery_score: float = 0.5,
        **kwargs: Any,
    ) -> None:
        super().__init__(arch=arch, **kwargs)
        if not 0 <= gallery_score <= 1:
            raise UserError(f"model.gallery_score={gallery_score} must be in [0, 1]")
        hp = self.hparams
        if hp.compile is not False:
            raise UserError(
                f"model.compile={hp.compile!r} is not supported by the detection task (its detectors recompile at every step); leave it false"
            )
        self.model = build_architecture(
            DETECTION_MODELS,
            arch,
            hp.in_channels,
            hp.num_classes + 1,
            options=hp.arch_options,
            **self.start_weights(),
        )
        self.train_loss, self.val_loss = MeanMetric(), MeanMetric()
        self.val_map = detection_metric()

    def chance_level(self, datamodule: Any) -> Chance | None:
        """No correct detection: every mAP is 0."""
        return chance_or_none(self._chance, datamodule)

    def baselines(self, datamodule: Any, split: str = "val") -> dict[str, dict[str, float]]:
        """``empty``: no box on any image, scored on the split's boxes by
        :func:`detection_metric` (0 wherever there are objects; -1: nothing to score)."""
        metric, seen = detection_metric(), 0
        for _, targets, _ in datamodule.split_dataloader(split):
            empty = {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0)}
            metric.update(
                [{**empty, "labels": torch.zeros(0, dtype=torch.long)}] * len(targets), targets
            )
            seen += len(targets)
        if not seen:
            return {}
        flat = flatten_map(metric.compute(), self.class_names, split)
        return {"empty": {k.split("/", 1)[1]: v for k, v in flat.items() if k.count("/") == 1}}

    def _chance(self, datamodule: Any) -> Chance:
        return Chance(
            self.monitor.metric, {"no correct detection": 0.0}, None, "detection_errors.png"
        )

    @classmethod
    def weights_preprocessing(cls, init_args: dict[str, Any]) -> dict[str, Any] | None:
        a = init_args
        return preprocessing(
            DETECTION_MODELS,
            a.get("arch") or "fcos_small",
            a.get("weights"),
            a.get("arch_options"),
            a.get("backbone_weights"),
            bool(a.get("pretrained")),
        )

    def configure_callbacks(self) -> list[Callback]:
        monitor, mode = self.monitor
        hp = self.hparams
        gallery = DetectionGallery(hp.gallery_size, hp.gallery_score, monitor, mode)
        return [gallery, *super().configure_callbacks()]

    def forward(self, x: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """Detections per image: ``boxes`` (x1, y1, x2, y2 pixels of ``x``), ``scores``, and
        ``labels`` as class indices from 0."""
        out = self.model(list(x))
        return [
            {"boxes": d["boxes"].float(), "scores": d["scores"].float(), "labels": d["labels"] - 1}
            for d in out
        ]

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, targets, _ = batch
        losses = self.model(list(x), to_model_targets(targets))
        n = len(x)
        loss = self.log_train_loss(sum(losses.values()), batch_size=n)
        for name, value in losses.items():
            name = name.removeprefix("loss_")
            self.log(
                f"train/loss/{name}", value.detach(), on_step=False, on_epoch=True, batch_size=n
            )
        return loss

    def losses(self, x: torch.Tensor, targets: list[dict[str, torch.Tensor]]) -> dict[str, Any]:
        """The training losses, without touching the model: torchvision detectors compute them
        only in training mode, so batch norm and dropout are held in eval mode meanwhile."""
        modes = [(m, m.training) for m in self.model.modules()]
        self.model.train()
        for m in self.model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm | torch.nn.Dropout):
                m.eval()
        try:
            with torch.no_grad():
                return self.model(list(x), to_model_targets(targets))
        finally:
            for m, mode in modes:
                m.train(mode)

    def validation_step(self, batch: Any, batch_idx: int) -> dict[str, Any]:
        x, targets, index = batch
        self.val_loss.update(sum(self.losses(x, targets).values()), weight=len(x))
        preds = self(x)
        self.val_map.update(preds, targets)
        return {"preds": preds, "targets": targets, "index": index}

    def on_validation_epoch_end(self) -> None:
        self.log_validation_epoch(self.val_map, flatten_map, {"val/loss", "val/map", "val/map_50"})

    def predict_step(self, batch: Any, batch_idx: int) -> dict[str, Any]:
        """``preds``: per image, a dict of ``boxes``, ``scores``, ``labels`` (see ``forward``);
        ``target``: the batch's target dicts; ``index`` (N,) positions."""
        x, targets, index = batch
        return {"preds": self(x), "target": targets, "index": index}
