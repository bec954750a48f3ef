"""The exported model on the validation images, run as the server runs it (standalone.py's
decoding and preprocessing, ONNX Runtime), summarized for ``reference.json``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mlcycle.monitor.binning import summarize, unit_histogram
from mlcycle.monitor.drift import class_counts, classification_metrics
from mlcycle.serve.standalone import load_model, output_kind, preprocess, softmax

KINDS = ("classification", "segmentation", "detection")
MIN_SCORE = 0.5  # detection: boxes counted, as predict.py lists them by default


class ValPredictions:
    """Collects the model's outputs image by image (batched when the graph allows)."""

    def __init__(self, model_path: Path, meta: dict[str, Any], batch_size: int = 64) -> None:
        self.kind = output_kind(meta)
        self.spec, self.names = meta["input"], [str(c) for c in meta["class_names"]]
        fixed = str(self.spec.get("shape", ["batch"])[0]) != "batch"
        self.batch_size = 1 if fixed or self.kind == "detection" else batch_size
        self.model = load_model(model_path)
        self.pending: list[np.ndarray] = []
        self.labels: list[str | None] = []
        self.predicted: list[str] = []
        self.values: list[float] = []  # confidence, foreground share or boxes per image
        self.scores: list[float] = []  # detection: the counted boxes' scores

    def add(self, image: np.ndarray, label: str | None) -> None:
        self.pending.append(preprocess(image, self.spec))
        self.labels.append(label)
        if len(self.pending) >= self.batch_size:
            self.run()

    def run(self) -> None:
        if not self.pending:
            return
        outputs = [np.asarray(o) for o in self.model(np.stack(self.pending))]
        self.pending = []
        if self.kind == "classification":
            probs = softmax(outputs[0])
            best = probs.argmax(axis=1)
            self.predicted += [self.names[int(i)] for i in best]
            self.values += [float(p[i]) for p, i in zip(probs, best, strict=True)]
        elif self.kind == "segmentation":
            classes = outputs[0].argmax(axis=1)
            self.values += [float((mask != 0).mean()) for mask in classes]
        else:
            kept = np.asarray(outputs[1]).reshape(-1) >= MIN_SCORE
            self.values.append(float(kept.sum()))
            self.scores += [float(s) for s in np.asarray(outputs[1]).reshape(-1)[kept]]

    def summary(self) -> dict[str, Any]:
        self.run()
        if self.kind == "classification":
            return self._classification()
        if self.kind == "segmentation":
            return {
                "images": len(self.values),
                "foreground_share": summarize(self.values),
                "foreground": f"pixels not of class 0 ('{self.names[0]}')",
            }
        return {
            "images": len(self.values),
            "min_score": MIN_SCORE,
            "boxes_per_image": summarize(self.values),
            "score": summarize(self.scores),
        }

    def _classification(self) -> dict[str, Any]:
        labelled = [(t, p) for t, p in zip(self.labels, self.predicted, strict=True) if t]
        metrics = classification_metrics(
            [t for t, _ in labelled], [p for _, p in labelled], self.names
        )
        # rounded as the server and predict.py report it (6 decimals): a KS test against the
        # store's values must not see 0.9999999999 and 1.0 as different
        conf = np.round(np.asarray(self.values, dtype=np.float64), 6)
        return {
            "images": len(self.predicted),
            "classes": class_counts(self.predicted, self.names),
            "confidence": {**summarize(conf), "histogram": unit_histogram(conf)},
            "labelled": metrics.pop("rows"),
            **metrics,
        }
