"""Prediction results as store rows: what predict.py (``--db``) and batch jobs record, the same
columns the server writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mlcycle.core.hashing import file_sha256
from mlcycle.serve.stats import image_stats
from mlcycle.serve.store import prediction_row


def summary(result: dict[str, Any]) -> tuple[str | None, float | None, Any]:
    """``(predicted, confidence, top_k)`` of one result of any task, for the store's columns:
    the class; the classes covering the image (segmentation); the box count (detection)."""
    if "class" in result:
        return str(result["class"]), result.get("confidence"), result.get("top_k")
    if "class_shares" in result:
        shares = result["class_shares"]
        present = sorted(shares, key=lambda k: -shares[k])
        return ",".join(present[:3]), None, shares
    if "detections" in result:
        boxes = result["detections"]
        best = max((b.get("score", 0.0) for b in boxes), default=None)
        return f"{len(boxes)} boxes", best, boxes
    return None, None, None


def image_row(
    path: Path, image: np.ndarray, mode: str, result: dict[str, Any], **columns: Any
) -> dict[str, Any]:
    """The store row of one predicted image file (``image``: as decoded for the model)."""
    predicted, confidence, top_k = summary(result)
    height, width = image.shape[:2]
    return prediction_row(
        input_name=str(path),
        input_sha256=file_sha256(path),
        width=width,
        height=height,
        mode=mode,
        predicted=predicted,
        confidence=confidence,
        top_k=json.loads(json.dumps(top_k)) if top_k is not None else None,
        **image_stats(image),
        **columns,
    )


def image_mode(path: Path) -> str:
    with Image.open(path) as img:
        return img.mode
