"""An output form: how the outputs of an exported graph are answered, per image.

:class:`Form` is the contract, and by itself the form of any output nobody described: every
output of the graph, per image, as numbers under the names ``model.json`` gives. The forms an
exporter can declare (``classes``, ``mask``, ``boxes``, ``labels``) are in ``forms.py``.

One form object answers for predict.py (:meth:`Form.line`, a JSON line per image), the server
(:meth:`Form.answer`, one entry of a response), the prediction store (:meth:`Form.stored`, the
columns kept per prediction) and the server's metrics (:meth:`Form.counted`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

Size = tuple[int, int]  # an image's own (height, width)
Stored = tuple[str | None, float | None, Any]  # the store's predicted, confidence, top_k


@dataclass
class Options:
    """What the caller chooses about the answers (predict.py's and the server's options)."""

    top_k: int = 3  # classes: classes listed per image
    min_score: float = 0.5  # boxes: lowest score listed
    threshold: float | None = None  # labels: lowest probability of a label (None: model.json's)
    masks_dir: Path | None = None  # masks: predict.py's folder for the mask PNGs
    taken: set[str] = field(default_factory=set)  # masks: file names written so far


class Form:
    """The raw form: every output per image, under ``output.names`` (or ``output.name``, else
    output0, output1, ...), rounded to 6 decimals. Subclasses answer a declared form."""

    name: ClassVar[str] = "raw"
    batch_axis: ClassVar[bool] = True  # False: one image per call, outputs without a batch axis
    writes_files: ClassVar[bool] = False  # predict.py writes a file per image (masks_dir)
    feedback_is_class: ClassVar[bool] = False  # the true label of a prediction is a class name

    def __init__(self, meta: dict[str, Any], options: Options | None = None) -> None:
        self.meta = meta
        self.output: dict[str, Any] = meta.get("output") or {}
        self.names = [str(n) for n in meta.get("class_names") or []]
        self.options = options or Options()

    def answers(self, outputs: list[list[np.ndarray]], sizes: list[Size]) -> list[dict[str, Any]]:
        """The answers of one model call: ``outputs[i]`` are image i's outputs, ``sizes[i]``
        its own (height, width)."""
        return [self.answer(out, size) for out, size in zip(outputs, sizes, strict=True)]

    def answer(self, outputs: list[np.ndarray], size: Size) -> dict[str, Any]:
        """One image's answer, as the server sends it."""
        names = self.output.get("names") or (
            [self.output["name"]] if self.output.get("name") else []
        )
        keys = [names[i] if i < len(names) else f"output{i}" for i in range(len(outputs))]
        values = {
            k: np.round(np.asarray(o).astype(np.float64), 6).tolist()
            for k, o in zip(keys, outputs, strict=True)
        }
        return {"task": self.meta.get("task"), "outputs": values}

    def line(self, answer: dict[str, Any], path: Path) -> dict[str, Any]:
        """predict.py's fields for the image at ``path`` (after its ``path``)."""
        return answer

    def stored(self, result: dict[str, Any]) -> Stored:
        """The store's ``predicted``, ``confidence`` and ``top_k`` (details, as JSON) of an answer
        or of predict.py's line."""
        return None, None, None

    def counted(self, answer: dict[str, Any]) -> str:
        """What an answer counts for in the server's metrics (a class, in most forms)."""
        return "(none)"


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over axis 1, in float64."""
    z = logits.astype(np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
