"""The exported model on the validation images, run as the server runs it (mlcycle.edge's
decoding, preprocessing and output forms, ONNX Runtime), summarized for ``reference.json``.

What is summarized depends on the model's output form (the :data:`SUMMARIES` registry, keyed
by the form ``model.json`` declares; entry point group ``mlcycle.monitor_summaries``). A summary's ``classes`` (counts of what the store's ``predicted``
column holds), ``confidence`` and ``accuracy`` are what the monitor's prediction and
performance checks compare a window with; the rest is for reading.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mlcycle.core.registry import Registry
from mlcycle.edge.decode import preprocess
from mlcycle.edge.form import Form, softmax
from mlcycle.edge.forms import Labels, form_for
from mlcycle.edge.model import is_batched, load_model
from mlcycle.monitor.binning import summarize, unit_histogram
from mlcycle.monitor.drift import class_counts, classification_metrics
from mlcycle.monitor.estimate import val_reliability

MIN_SCORE = 0.5  # boxes: counted as predict.py lists them by default


class Summary:
    """The model's outputs on val, image by image, and their summary for one output form."""

    name: ClassVar[str]  # the output form it summarizes

    def __init__(self, form: Form) -> None:
        self.form = form
        self.names = form.names
        self.labels: list[str | None] = []

    def add(self, outputs: list[np.ndarray], labels: list[str | None]) -> None:
        """One model call's outputs (batch axis first, unless the form has none)."""
        raise NotImplementedError

    def summary(self) -> dict[str, Any]:
        raise NotImplementedError


class ClassesSummary(Summary):
    """Predicted-class counts, the confidence distribution, and the metrics on labelled val."""

    name = "classes"

    def __init__(self, form: Form) -> None:
        super().__init__(form)
        self.predicted: list[str] = []
        self.confidence: list[float] = []

    def add(self, outputs: list[np.ndarray], labels: list[str | None]) -> None:
        probs = softmax(outputs[0])
        found = probs.argmax(axis=1)
        self.predicted += [self.names[int(i)] for i in found]
        self.confidence += [float(p[i]) for p, i in zip(probs, found, strict=True)]
        self.labels += labels

    def summary(self) -> dict[str, Any]:
        labelled = [(t, p) for t, p in zip(self.labels, self.predicted, strict=True) if t]
        metrics = classification_metrics(
            [t for t, _ in labelled], [p for _, p in labelled], self.names
        )
        # rounded as the server and predict.py report it (6 decimals): a KS test against the
        # store's values must not see 0.9999999999 and 1.0 as different
        conf = np.round(np.asarray(self.confidence, dtype=np.float64), 6)
        return {
            "images": len(self.predicted),
            "classes": class_counts(self.predicted, self.names),
            "confidence": {**summarize(conf), "histogram": unit_histogram(conf)},
            "labelled": metrics.pop("rows"),
            **metrics,
            # what the monitor's estimate without labels calibrates served confidences by
            "reliability": val_reliability(self.confidence, self.labels, self.predicted),
        }


class MaskSummary(Summary):
    """The share of each image's pixels not of class 0 (at the model's resolution)."""

    name = "mask"

    def __init__(self, form: Form) -> None:
        super().__init__(form)
        self.shares: list[float] = []

    def add(self, outputs: list[np.ndarray], labels: list[str | None]) -> None:
        classes = outputs[0].argmax(axis=1)
        self.shares += [float((mask != 0).mean()) for mask in classes]

    def summary(self) -> dict[str, Any]:
        return {
            "images": len(self.shares),
            "foreground_share": summarize(self.shares),
            "foreground": f"pixels not of class 0 ('{self.names[0]}')",
        }


class BoxesSummary(Summary):
    """Boxes per image and their scores, those scoring at least :data:`MIN_SCORE`."""

    name = "boxes"

    def __init__(self, form: Form) -> None:
        super().__init__(form)
        self.counts: list[float] = []
        self.scores: list[float] = []

    def add(self, outputs: list[np.ndarray], labels: list[str | None]) -> None:
        scores = np.asarray(outputs[1]).reshape(-1)
        kept = scores >= MIN_SCORE
        self.counts.append(float(kept.sum()))
        self.scores += [float(s) for s in scores[kept]]

    def summary(self) -> dict[str, Any]:
        return {
            "images": len(self.counts),
            "min_score": MIN_SCORE,
            "boxes_per_image": summarize(self.counts),
            "score": summarize(self.scores),
        }


class LabelsSummary(Summary):
    """The label sets found (as the store keeps them: ``classes``), how often each label was
    found, and labels per image; each from the form's own answers."""

    name = "labels"

    def __init__(self, form: Form) -> None:
        super().__init__(form)
        assert isinstance(form, Labels)
        self.every = form.labels
        self.found: list[list[str]] = []
        self.stored: list[str] = []

    def add(self, outputs: list[np.ndarray], labels: list[str | None]) -> None:
        per_image = [[o[i] for o in outputs] for i in range(len(outputs[0]))]
        sizes = [(0, 0)] * len(per_image)  # a label's answer does not depend on the image size
        for answer in self.form.answers(per_image, sizes):
            self.found.append(answer["labels"])
            self.stored.append(str(self.form.stored(answer)[0]))

    def summary(self) -> dict[str, Any]:
        return {
            "images": len(self.found),
            "classes": class_counts(self.stored, []),
            "labels": class_counts([name for found in self.found for name in found], self.every),
            "labels_per_image": summarize([len(found) for found in self.found]),
        }


# By output form; a plugin that brings its own form adds its summary through the entry point
# group (name = the form's name, value = "package.module:SummaryClass").
SUMMARIES: Registry[type[Summary]] = Registry(
    "summary of val predictions", "model.json output.kind", "mlcycle.monitor_summaries"
)
for _summary in (ClassesSummary, MaskSummary, BoxesSummary, LabelsSummary):
    SUMMARIES.add(_summary.name, _summary)


class ValPredictions:
    """Runs the model on images as they are added (batched when the graph allows) and
    summarizes its outputs in the model's output form."""

    def __init__(self, model_path: Path, meta: dict[str, Any], batch_size: int = 64) -> None:
        form = form_for(meta)
        self.spec = meta["input"]
        single = not is_batched(meta) or not form.batch_axis
        self.batch_size = 1 if single else batch_size
        self.model = load_model(model_path)
        self.outputs = SUMMARIES.get(form.name)(form)
        self.pending: list[np.ndarray] = []
        self.labels: list[str | None] = []

    def add(self, image: np.ndarray, label: str | None) -> None:
        self.pending.append(preprocess(image, self.spec))
        self.labels.append(label)
        if len(self.pending) >= self.batch_size:
            self.run()

    def run(self) -> None:
        if not self.pending:
            return
        outputs = [np.asarray(o) for o in self.model(np.stack(self.pending))]
        self.outputs.add(outputs, self.labels)
        self.pending, self.labels = [], []

    def summary(self) -> dict[str, Any]:
        self.run()
        return self.outputs.summary()
