"""The objective: the business gate a run must pass, e.g.

```yaml
objective: {metric: val/f1, min: 0.95, per_class_min: 0.80, max_latency_ms: 20, max_size_mb: 10}
```

train.py checks it against the best val metrics, evaluate.py against the split it scores
(``--split test`` exits 3 when it fails), export.py refuses a run whose val gate failed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import yaml

from mlcycle.core.errors import UserError

DEFAULT_METRIC = "val/f1"
SPLITS = ("train", "val", "test")
LOWER_IS_BETTER = ("loss", "error", "mae", "mse", "rmse")
# Metrics that are fractions: a limit of 95 is a mistake for 0.95.
FRACTIONS = ("f1", "acc", "precision", "recall", "iou", "dice", "map", "ap", "auroc")
# The per-class value of a metric where it has another name (detection: mAP -> AP per class).
PER_CLASS_NAME = {"map": "ap"}
NOTHING_TO_SCORE = -1.0  # detection's per-class AP of a class with no objects and no detections


def _number(key: str, value: Any, positive: bool = False) -> float | None:
    """``value`` as a finite float (``None`` stays ``None``), else a UserError naming the key."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UserError(f"objective.{key} must be a finite number, got {value!r}")
    if positive and value <= 0:
        raise UserError(f"objective.{key} must be above 0, got {value!r}")
    return float(value)


@dataclass
class Objective:
    """What a model must reach to be worth shipping; every limit is optional."""

    metric: str = DEFAULT_METRIC
    min: float | None = None  # the business minimum of `metric` (mode max) or maximum (mode min)
    per_class_min: float | None = None  # the same bound on every class's value of `metric`
    slice_min: float | None = None  # evaluation by slice flags a slice below it (default: min)
    max_latency_ms: float | None = None
    max_size_mb: float | None = None
    mode: str | None = None  # "max"/"min"; None: inferred from the metric name

    def __post_init__(self) -> None:
        if not isinstance(self.metric, str) or not self.metric.strip("/ "):
            raise UserError(
                f"objective.metric must be a metric name such as val/f1, got {self.metric!r}"
            )
        if self.mode not in (None, "max", "min"):
            raise UserError(f"objective.mode must be max or min, got {self.mode!r}")
        self.min = _number("min", self.min)
        self.per_class_min = _number("per_class_min", self.per_class_min)
        self.slice_min = _number("slice_min", self.slice_min)
        self.max_latency_ms = _number("max_latency_ms", self.max_latency_ms, positive=True)
        self.max_size_mb = _number("max_size_mb", self.max_size_mb, positive=True)
        for key in ("min", "per_class_min", "slice_min"):
            value = getattr(self, key)
            if value is not None and self.is_fraction and not 0 <= value <= 1:
                raise UserError(
                    f"objective.{key} {value:g} is outside 0..1, the range of {self.metric} "
                    f"(write 0.95 for 95%)"
                )

    @property
    def name(self) -> str:
        """The metric without its split: ``val/f1`` -> ``f1``."""
        head, _, rest = self.metric.partition("/")
        return rest if head in SPLITS and rest else self.metric

    @property
    def direction(self) -> str:
        """``max`` (higher is better) or ``min``: ``mode``, else from the metric's name."""
        if self.mode:
            return self.mode
        return "min" if any(word in self.name for word in LOWER_IS_BETTER) else "max"

    @property
    def is_fraction(self) -> bool:
        base = self.name.split("/")[0]
        return base in FRACTIONS or base.startswith("map_")

    @property
    def per_class_name(self) -> str:
        """The name of the per-class values of ``metric`` (``f1``; detection's ``map``: ``ap``)."""
        return PER_CLASS_NAME.get(self.name, self.name)

    def to_dict(self) -> dict[str, Any]:
        """The keys set, and the mode (inferred or given)."""
        return {**{k: v for k, v in asdict(self).items() if v is not None}, "mode": self.direction}


KEYS = tuple(f.name for f in fields(Objective))


def parse_objective(raw: dict | Objective | None) -> Objective | None:
    """An :class:`Objective` from a config's ``objective`` mapping (or one already built)."""
    if raw is None or isinstance(raw, Objective):
        return raw
    if hasattr(raw, "as_dict"):  # a jsonargparse Namespace
        raw = raw.as_dict()
    if not isinstance(raw, dict):
        raise UserError(
            f"objective must be a mapping such as {{metric: val/f1, min: 0.95}}, got {raw!r}"
        )
    unknown = [str(k) for k in raw if k not in KEYS]
    if unknown:
        raise UserError(f"unknown key objective.{unknown[0]}; valid keys: {', '.join(KEYS)}")
    return Objective(**raw)


def load_objective(run_dir: Path) -> Objective | None:
    """The objective in the run's ``config.yaml``, or ``None``."""
    config_file = Path(run_dir) / "config.yaml"
    if not config_file.is_file():
        return None
    config = yaml.safe_load(config_file.read_text()) or {}
    return parse_objective(config.get("objective"))


def run_monitor(run_dir: Path, task_cls: Any) -> tuple[str, str]:
    """The metric and mode a trained run monitored. A task class's ``monitor`` is its
    instances' default, not always theirs (a table task on regression data monitors
    ``val/rmse``), so the run's ``metrics.json`` (``monitor``, from the trained instance) decides."""
    import json

    metric, mode = getattr(task_cls, "monitor", None) or (DEFAULT_METRIC, "max")
    path = Path(run_dir) / "metrics.json"
    try:
        recorded = json.loads(path.read_text()).get("monitor") if path.is_file() else None
    except (ValueError, AttributeError):
        recorded = None
    if not isinstance(recorded, str) or recorded == metric:
        return metric, mode
    regression = getattr(task_cls, "regression_monitor", None)
    if regression is not None and regression[0] == recorded:
        return regression[0], regression[1]
    return recorded, "min" if any(w in recorded for w in LOWER_IS_BETTER) else "max"


def for_monitor(objective: Objective | None, monitor: str) -> Objective | None:
    """The default metric (``val/f1``) means the task's monitor (``val/iou``, ``val/map``)."""
    if objective is None or objective.metric != DEFAULT_METRIC or monitor == DEFAULT_METRIC:
        return objective
    return replace(objective, metric=monitor)


@dataclass
class Gate:
    """The objective checked against measured values."""

    passed: bool
    checks: list[dict]

    def line(self) -> str:
        """``objective PASS: val/f1 0.9885 >= 0.95; latency 1.2 ms <= 20 ms`` (or ``FAIL``)."""
        verdict = "PASS" if self.passed else "FAIL"
        details = "; ".join(c["detail"] for c in self.checks) or "no limits set"
        return f"objective {verdict}: {details}"

    def failed(self) -> list[dict]:
        return [c for c in self.checks if c["passed"] is False]

    def to_dict(self) -> dict:
        return {"passed": self.passed, "checks": self.checks, "line": self.line()}

    @classmethod
    def from_dict(cls, data: dict) -> Gate:
        return cls(passed=bool(data["passed"]), checks=list(data["checks"]))


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _check(
    name: str,
    value: float | None,
    limit: float,
    higher: bool,
    label: str,
    shown: str = "{:.4f}",
    unit: str = "",
) -> dict:
    """One check: ``label value >= limit`` (``<=`` when lower is better); ``passed`` is
    ``None`` when ``value`` was not measured."""
    if value is None:
        detail = f"{label} not measured ({'>=' if higher else '<='} {limit:g}{unit})"
        return {"name": name, "value": None, "limit": limit, "passed": None, "detail": detail}
    passed = value >= limit if higher else value <= limit
    sign = (">=" if passed else "<") if higher else ("<=" if passed else ">")
    detail = f"{label} {shown.format(value)}{unit} {sign} {limit:g}{unit}"
    return {"name": name, "value": value, "limit": limit, "passed": passed, "detail": detail}


def _metric_value(
    objective: Objective, metrics: dict[str, float], split: str | None
) -> float | None:
    keys = [f"{split}/{objective.name}" if split else objective.metric, objective.name]
    return next((v for k in keys if (v := _finite(metrics.get(k))) is not None), None)


def _worst_class(
    objective: Objective, per_class: dict[str, float] | None
) -> tuple[str, float] | None:
    """The class furthest from the goal (lowest value, or highest for mode min)."""
    values = {
        str(name): v
        for name, raw in (per_class or {}).items()
        if (v := _finite(raw)) is not None and v != NOTHING_TO_SCORE
    }
    if not values:
        return None
    name = (min if objective.direction == "max" else max)(values, key=values.__getitem__)
    return name, values[name]


def check_gate(
    objective: Objective,
    metrics: dict[str, float],
    per_class: dict[str, float] | None = None,
    latency_ms: float | None = None,
    size_mb: float | None = None,
    split: str | None = None,
) -> Gate:
    """Check ``objective`` against measured values; an unmeasured one is listed, not failed.

    ``metrics`` keys may carry the split (``val/f1``) or not (``f1``, as in eval_<split>.json);
    with ``split`` the metric is read on that split (``test/f1``, else ``f1``) and its check is
    named ``test/f1``. ``per_class`` maps class name -> value of the same metric.
    """
    higher = objective.direction == "max"
    checks = []
    if objective.min is not None:
        name = f"{split}/{objective.name}" if split else objective.metric
        value = _metric_value(objective, metrics, split)
        checks.append(_check(name, value, objective.min, higher, name))
    if objective.per_class_min is not None:
        worst = _worst_class(objective, per_class)
        label = f"worst class {objective.per_class_name}"
        quoted = repr(worst[0]).replace("{", "{{").replace("}", "}}") if worst else ""
        shown = f"{{:.4f}} ({quoted})"
        value = worst[1] if worst else None
        checks.append(_check("per_class_min", value, objective.per_class_min, higher, label, shown))
    if objective.max_latency_ms is not None:
        limit, value = objective.max_latency_ms, _finite(latency_ms)
        checks.append(_check("max_latency_ms", value, limit, False, "latency", "{:.3g}", " ms"))
    if objective.max_size_mb is not None:
        limit, value = objective.max_size_mb, _finite(size_mb)
        checks.append(_check("max_size_mb", value, limit, False, "size", "{:.3g}", " MB"))
    return Gate(passed=all(c["passed"] is not False for c in checks), checks=checks)


def per_class_values(objective: Objective, metrics: dict[str, Any]) -> dict[str, float]:
    """``{class: value}`` from flat ``val/f1/<class>`` keys (metrics.json's best row)."""
    head, _, rest = objective.metric.partition("/")
    prefix = f"{head if head in SPLITS and rest else 'val'}/{objective.per_class_name}/"
    return {k[len(prefix) :]: v for k, v in metrics.items() if k.startswith(prefix)}


def per_class_rows(
    objective: Objective, rows: dict[str, dict[str, Any]] | None
) -> dict[str, float]:
    """``{class: value}`` from eval_<split>.json's ``per_class`` rows."""
    key = objective.per_class_name
    return {name: row[key] for name, row in (rows or {}).items() if key in row}


def train_gate(objective: Objective, record: dict[str, Any], **measured: float | None) -> Gate:
    """The gate on the best val metrics in a run's ``metrics.json`` record; ``measured``:
    ``latency_ms`` and ``size_mb`` where known (export.py knows the size)."""
    return check_gate(objective, record, per_class_values(objective, record), **measured)


def eval_gate(objective: Objective, result: dict[str, Any], split: str) -> Gate:
    """The gate on evaluate.py's result for ``split``."""
    per_class = per_class_rows(objective, result.get("per_class"))
    return check_gate(objective, result.get("metrics", {}), per_class, split=split)


def gate_record(objective: Objective | None, record: dict[str, Any]) -> dict[str, Any]:
    """``{"objective": ..., "gate": ...}`` for a run's metrics.json; ``{}`` without objective."""
    if objective is None:
        return {}
    return {"objective": objective.to_dict(), "gate": train_gate(objective, record).to_dict()}
