"""The output forms an exporter can declare in ``model.json``'s ``output.kind``.

* ``classes``: class logits. The best class, its confidence and the top-k classes (softmax).
* ``mask``: per-pixel class logits. A mask of class indices at the image's own size
  (nearest-neighbour) and the share of pixels of each class present.
* ``boxes``: a detector's boxes, scores and labels for one image (post-processing in the
  graph). The boxes scoring at least ``min_score``, in the image's own pixels.
* ``table``: a table model's rows (``predict_rows.TableForm``): each row's class, its
  confidence and every class's probability, or the predicted number.
* ``labels``: independent probabilities of ``output.labels`` (or logits, when
  ``output.sigmoid_applied`` is false). Each label's probability and the labels at or above
  the threshold (``output.threshold``, or the caller's).

Any other form is answered raw (:class:`~.form.Form`). predict.py, the server, the store and
the monitor look a form up here by the name the exporter declared (:func:`form_for`), never by
the task's name. A task added by a plugin picks one of these forms in its exporter, or brings
its own: a :class:`~.form.Form` subclass registered as an entry point in the
``mlcycle.output_forms`` group (installed beside the edge folder, on a device too).
"""

from __future__ import annotations

import base64
import io
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .decision import decide
from .form import Form, Options, Size, Stored, sigmoid, softmax
from .model import UsageError
from .predict_rows import TableForm


class Classes(Form):
    name = "classes"
    feedback_is_class = True

    def answers(self, outputs: list[list[np.ndarray]], sizes: list[Size]) -> list[dict[str, Any]]:
        probs = softmax(np.stack([out[0] for out in outputs]))
        decision = self.output.get("decision")
        return [top_classes(p, self.names, self.options.top_k, decision) for p in probs]

    def answer(self, outputs: list[np.ndarray], size: Size) -> dict[str, Any]:
        return self.answers([outputs], [size])[0]

    def stored(self, result: dict[str, Any]) -> Stored:
        return str(result["class"]), result.get("confidence"), result.get("top_k")

    def counted(self, answer: dict[str, Any]) -> str:
        return answer["class"]


def top_classes(
    probs: np.ndarray, names: list[str], top_k: int, decision: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One image's class probabilities as its class (the most probable, or the one a binary
    ``decision`` threshold picks) and its top-k list."""
    k = max(1, min(top_k, len(names)))
    order = np.argsort(-probs, kind="stable")[:k]
    first = decide(probs, decision)
    return {
        "class": names[first],
        "index": first,
        "confidence": round(float(probs[first]), 6),
        "top_k": [
            {"class": names[int(i)], "probability": round(float(probs[i]), 6)} for i in order
        ],
    }


class Labels(Form):
    name = "labels"

    def __init__(self, meta: dict[str, Any], options: Options | None = None) -> None:
        super().__init__(meta, options)
        self.labels = [str(v) for v in self.output.get("labels") or self.names]
        given = self.options.threshold
        self.threshold = float(self.output.get("threshold", 0.5)) if given is None else given

    def answer(self, outputs: list[np.ndarray], size: Size) -> dict[str, Any]:
        probs = np.asarray(outputs[0], dtype=np.float64)
        if not self.output.get("sigmoid_applied", True):
            probs = sigmoid(probs)
        pairs = list(zip(self.labels, probs, strict=True))
        return {
            "labels": [label for label, p in pairs if p >= self.threshold],
            "probabilities": {label: round(float(p), 6) for label, p in pairs},
            "threshold": self.threshold,
        }

    def stored(self, result: dict[str, Any]) -> Stored:
        """The labels found, joined by commas (``(none)`` for none), and every probability."""
        return ",".join(result["labels"]) or "(none)", None, result["probabilities"]

    def counted(self, answer: dict[str, Any]) -> str:
        return ",".join(answer["labels"]) or "(none)"


class Mask(Form):
    name = "mask"
    writes_files = True

    def answer(self, outputs: list[np.ndarray], size: Size) -> dict[str, Any]:
        height, width = size
        mask = full_mask(np.asarray(outputs[0]).argmax(axis=0).astype(np.uint8), height, width)
        png = io.BytesIO()
        Image.fromarray(mask).save(png, format="PNG")
        return {
            "size": [width, height],
            "mask_png": base64.b64encode(png.getvalue()).decode("ascii"),
            "class_shares": class_shares(mask, self.names),
        }

    def line(self, answer: dict[str, Any], path: Path) -> dict[str, Any]:
        """The mask PNG written into ``masks_dir`` under the image's stem (numbered when two
        images share a stem), and its path instead of its bytes."""
        folder, taken = self.options.masks_dir, self.options.taken
        assert folder is not None, "predict.py gives a mask form its masks_dir"
        name, n = f"{path.stem}.png", 1
        while name in taken:  # same stem in two folders
            n += 1
            name = f"{path.stem}_{n}.png"
        taken.add(name)
        (folder / name).write_bytes(base64.b64decode(answer["mask_png"]))
        return {
            "mask": str(folder / name),
            "size": answer["size"],
            "class_shares": answer["class_shares"],
        }

    def stored(self, result: dict[str, Any]) -> Stored:
        """The classes covering the image, largest first (three at most), and every share."""
        shares = result["class_shares"]
        present = sorted(shares, key=lambda k: -shares[k])
        return ",".join(present[:3]), None, shares

    def counted(self, answer: dict[str, Any]) -> str:
        return max(answer["class_shares"].items(), key=lambda kv: kv[1])[0]


def full_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """A uint8 class-index mask at the image's own size (nearest-neighbour)."""
    return np.asarray(Image.fromarray(mask).resize((width, height), Image.Resampling.NEAREST))


def class_shares(mask: np.ndarray, names: list[str]) -> dict[str, float]:
    """The share of the mask's pixels of each class present."""
    counts = np.bincount(mask.ravel(), minlength=len(names))
    return {names[c]: round(float(counts[c]) / mask.size, 6) for c in np.flatnonzero(counts)}


class Boxes(Form):
    name = "boxes"
    batch_axis = False  # the graph's batch is one image

    def answer(self, outputs: list[np.ndarray], size: Size) -> dict[str, Any]:
        height, width = size
        found = boxes_found(outputs, self.meta, height, width, self.options.min_score)
        return {"size": [width, height], "boxes": found}

    def line(self, answer: dict[str, Any], path: Path) -> dict[str, Any]:
        return {"size": answer["size"], "detections": answer["boxes"]}

    def stored(self, result: dict[str, Any]) -> Stored:
        """How many boxes, the best score, and the boxes."""
        boxes = result["boxes"] if "boxes" in result else result["detections"]
        top = max((b.get("score", 0.0) for b in boxes), default=None)
        return f"{len(boxes)} boxes", top, boxes

    def counted(self, answer: dict[str, Any]) -> str:
        boxes = answer["boxes"]
        return max(boxes, key=lambda box: box["score"])["class"] if boxes else "(none)"


def boxes_found(
    outputs: list[np.ndarray],
    meta: dict[str, Any],
    height: int,
    width: int,
    min_score: float,
) -> list[dict[str, Any]]:
    """One image's boxes (with their class and score) in the image's own pixels, those scoring
    at least ``min_score``."""
    names, spec = meta["class_names"], meta["input"]
    boxes, scores, labels = (np.asarray(a) for a in outputs[:3])
    scale = np.array([width, height, width, height]) / np.array(
        [spec["width"], spec["height"], spec["width"], spec["height"]], dtype=np.float64
    )
    found = []
    for box, score, label in zip(boxes.reshape(-1, 4) * scale, scores, labels, strict=True):
        if score >= min_score:
            found.append(
                {
                    "class": names[int(label)],
                    "index": int(label),
                    "score": round(float(score), 6),
                    "box": [round(float(v), 2) for v in box],
                }
            )
    return found


FORMS: dict[str, type[Form]] = {
    form.name: form for form in (Classes, Mask, Boxes, Labels, TableForm)
}
GROUP = "mlcycle.output_forms"  # plugins add forms here: name = "package.module:FormClass"


@cache
def known_forms() -> dict[str, type[Form]]:
    """The built-in forms (always here: the folder may be copied alone, without package
    metadata) and those installed packages add through the :data:`GROUP` entry points."""
    found = dict(FORMS)
    for point in entry_points(group=GROUP):
        if point.name in found:
            continue
        try:
            found[point.name] = point.load()
        except Exception as exc:  # a broken plugin names itself, not a traceback
            raise UsageError(
                f"the output form '{point.name} = {point.value}' failed to load: {exc}"
            ) from exc
    return found


def form_name(meta: dict[str, Any]) -> str:
    """The form ``model.json`` declares (``output.kind``). A model.json written before forms
    were declared: read from its output description (listed boxes, a four-axis output is a
    mask, a two-axis one classes, none at all classes); else ``raw``."""
    output = meta.get("output")
    if not output:
        return Classes.name
    if output.get("kind"):
        return str(output["kind"])
    if any(item.get("name") == "boxes" for item in output.get("outputs") or []):
        return Boxes.name
    axes = len(output.get("shape") or [])
    return {2: Classes.name, 4: Mask.name}.get(axes, Form.name)


def form_for(meta: dict[str, Any], options: Options | None = None) -> Form:
    """The form that answers the model of ``meta``: its declared one, else the raw form."""
    return known_forms().get(form_name(meta), Form)(meta, options)
