"""evaluate.py's dummy baselines: the task's own (``Task.baselines``) on the evaluated split,
next to the model's metrics in ``eval_<split>.json`` and in its report lines."""

from __future__ import annotations

from typing import Any

from mlcycle.callbacks.baselines import baselines_or_empty, not_beaten, words


def add_baselines(result: dict[str, Any], model: Any, data: Any, split: str) -> None:
    """``result["baselines"]`` (name -> metric -> score) and a report line naming them, and one
    more when the model does not beat the strongest on the task's monitored metric."""
    found = baselines_or_empty(model, data, split)
    if not found:
        return
    result["baselines"] = found
    metric, mode = model.monitor  # the instance's (a table regression monitors val/rmse)
    key = metric.split("/")[-1]
    value = result.get("metrics", {}).get(key)
    lines = [f"  baselines ({split} {key}): {words(found, key)}"]
    if isinstance(value, float):
        line = not_beaten("the model", f"{split}/{key}", value, found, mode)
        lines += [f"  {line}"] if line else []
    result["report_lines"] = [*result.get("report_lines", []), *lines]
