"""A diagnosis finding and the next steps findings suggest (the rules: ``diagnosis``)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

NEXT = {
    "lower_lr": "lower the learning rate: run --find_lr (or --find_lr=apply)",
    "raise_lr": "raise the learning rate: run --find_lr (or --find_lr=apply)",
    "clip": "clip gradients (--trainer.gradient_clip_val=1.0) and lower the learning rate: run --find_lr",
    "vanishing": "raise the learning rate (--find_lr), check that inputs are normalized (data.json mean/std), "
    "or use an architecture with normalization layers",
    "overfitting": "add data or augmentation (data.train_transforms), raise model.weight_decay, or stop "
    "earlier (checkpoints/best.ckpt already keeps the best epoch)",
    "underfitting": "train longer (trainer.max_epochs), use a larger model (model.arch), or raise the "
    "learning rate: run --find_lr",
}


@dataclass
class Finding:
    """One diagnosis: what (``kind``), when (``epoch``, 1-based), the numbers behind it, and
    whether it judges one epoch (over-/under-fitting, ``scope="epoch"``) or the whole run."""

    kind: str
    epoch: int
    message: str
    next_step: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    scope: str = "run"

    def as_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["values"] = {k: json_number(v) for k, v in self.values.items()}
        return record

    def line(self) -> str:
        text = f"{self.kind} (epoch {self.epoch}): {self.message}"
        return f"{text}; next: {self.next_step}" if self.next_step else text


def json_number(v: Any) -> Any:
    """JSON has no NaN or infinity: those become strings."""
    if isinstance(v, list):
        return [json_number(x) for x in v]
    if isinstance(v, float):
        return round(v, 6) if math.isfinite(v) else str(v)
    return v


def short(v: float) -> str:
    return f"{v:.4g}" if math.isfinite(v) else str(v)
