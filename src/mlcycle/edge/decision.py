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
