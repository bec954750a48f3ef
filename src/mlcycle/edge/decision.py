"""A binary classifier's decision threshold (``model.json``'s ``output.decision``, chosen on
val by export.py): the positive class when its probability is at or above the threshold, the
other class below it. Without a decision, the most probable class. predict.py (images and
table rows), the server and the monitor decide here, so they decide alike."""

from __future__ import annotations

from typing import Any

import numpy as np


def decide(probs: np.ndarray, decision: dict[str, Any] | None) -> int:
    """The class index one sample's class probabilities decide for."""
    if not decision:
        return int(np.argmax(probs))
    positive = int(decision["positive_index"])
    return positive if float(probs[positive]) >= float(decision["threshold"]) else 1 - positive


DECIDED = ("classes", "table")  # the output forms whose class a decision picks


def with_threshold(meta: dict[str, Any], threshold: float | None) -> dict[str, Any]:
    """``meta`` (model.json) with the caller's decision threshold (predict.py --threshold) on a
    binary classifier: on model.json's positive class, else the second class (export.py's
    default). Other forms keep ``meta`` (a labels model reads its threshold itself); a class
    output of more than two classes, or a number, cannot take one (``ValueError``)."""
    output = meta.get("output") or {}
    if threshold is None or output.get("kind") not in DECIDED:
        return meta
    names = [str(n) for n in meta.get("class_names") or []]
    if len(names) != 2:
        what = f"this model has {len(names)} classes" if names else "this model predicts a number"
        raise ValueError(f"--threshold is a binary classifier's decision threshold; {what}")
    given = output.get("decision") or {"positive_index": 1}
    positive = int(given["positive_index"])
    decision = {
        "positive_class": names[positive],
        "positive_index": positive,
        "threshold": float(threshold),
        "rule": f"--threshold {threshold:g} (model.json's: {given.get('threshold', 'none')})",
    }
    return {**meta, "output": {**output, "decision": decision}}
