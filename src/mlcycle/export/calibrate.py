"""export.py's ``--calibrate`` and decision threshold options, for any classifier whose
exporter says it is one (``TaskExport.calibratable``; tables in their own ``export_run``).

``--calibrate`` fits temperature scaling on the val split's logits and puts it in the graph
(the logits divided by T before anyone's softmax); the check against eager runs the eager
model with the same T. ``--threshold_cost FP,FN``, ``--target_precision`` or
``--target_recall`` choose a binary classifier's decision threshold on the val probabilities
(calibrated when ``--calibrate`` is given). Both go to ``model.json``'s ``output``:
``output.calibration`` (``temperature``, ECE and NLL before and after) and ``output.decision``
(``positive_class``, ``positive_index``, ``threshold``), which predict.py and the server apply
through ``mlcycle.edge.decision``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from mlcycle.core.errors import UserError
from mlcycle.evaluators.calibration import softmax, temperature_record
from mlcycle.evaluators.thresholds import Rule, choose_threshold


class Tempered(nn.Module):
    """``module``'s logits divided by a fitted temperature (a buffer, so it is traced)."""

    def __init__(self, module: nn.Module, temperature: float) -> None:
        super().__init__()
        self.module = module
        self.register_buffer("temperature", torch.tensor(float(temperature)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x) / self.temperature


def _cost(text: str) -> tuple[float, float]:
    try:
        fp, fn = (float(v) for v in str(text).split(","))
    except ValueError:
        raise UserError(
            f"--threshold_cost '{text}': give the cost of a false positive and of a false "
            "negative, as FP,FN (e.g. 1,5)"
        ) from None
    if fp < 0 or fn < 0 or fp + fn == 0:
        raise UserError(f"--threshold_cost '{text}': costs must be >= 0 and not both 0")
    return fp, fn


def threshold_rule(options: Any) -> Rule | None:
    """The decision rule the options ask for, or None; more than one is refused."""
    given = {
        "--threshold_cost": getattr(options, "threshold_cost", None),
        "--target_precision": getattr(options, "target_precision", None),
        "--target_recall": getattr(options, "target_recall", None),
    }
    named = [k for k, v in given.items() if v is not None]
    if len(named) > 1:
        raise UserError(f"{' and '.join(named)}: pass one way of choosing the threshold")
    if not named:
        return None
    value = given[named[0]]
    if named[0] == "--threshold_cost":
        return Rule(cost=_cost(value))
    if not 0 < float(value) <= 1:
        raise UserError(f"{named[0]} {value}: give a fraction in (0, 1], e.g. 0.9")
    if named[0] == "--target_precision":
        return Rule(precision=float(value))
    return Rule(recall=float(value))


def check_adjustments(options: Any, classifier: bool, names: list[str]) -> Rule | None:
    """Refuse --calibrate and threshold options where they do not apply; the threshold rule."""
    rule = threshold_rule(options)
    if getattr(options, "calibrate", False) and not classifier:
        raise UserError("--calibrate fits a temperature to class scores; this model is no classifier")  # fmt: skip
    if rule is not None and (not classifier or len(names) != 2):
        what = f"this model has {len(names)} classes" if classifier else "it is no classifier"
        raise UserError(f"a decision threshold is for a binary classifier; {what}")
    positive = getattr(options, "positive_class", None)
    if positive is not None and positive not in names:
        raise UserError(f"--positive_class '{positive}' is not a class ({', '.join(names)})")
    return rule


def adjust(
    options: Any, logits: np.ndarray, target: np.ndarray, names: list[str], rule: Rule | None
) -> tuple[float | None, dict[str, Any]]:
    """The temperature to put in the graph (None: none) and model.json's ``output`` additions,
    from the val ``logits`` [N, K] and integer ``target`` [N]."""
    added: dict[str, Any] = {}
    temperature = None
    if getattr(options, "calibrate", False):
        added["calibration"] = temperature_record(logits, target)
        added["calibration"]["in_graph"] = True  # the graph's outputs are already divided by T
        temperature = added["calibration"]["temperature"]
        c = added["calibration"]
        print(
            f"calibration: temperature {temperature:.4f} fitted on {c['samples']} val samples; "
            f"ECE {c['ece_before']:.4f} -> {c['ece_after']:.4f}, NLL {c['nll_before']:.4f} -> {c['nll_after']:.4f}"
        )
        if c["at_bound"]:
            print(
                f"warning: the temperature hit the bound of its search ({temperature:g}) with "
                f"{c['val_mistakes']} val mistake(s): too few to fit it; trust the calibration less"
            )
    if rule is not None:
        probs = softmax(np.asarray(logits, dtype=np.float64) / (temperature or 1.0))
        given = getattr(options, "positive_class", None)
        pos = names.index(given) if given is not None else 1
        found = choose_threshold(probs[:, pos], np.asarray(target) == pos, rule)
        added["decision"] = {"positive_class": names[pos], "positive_index": pos, **found}
        val = found["val"]
        print(
            f"decision threshold: {names[pos]} when its probability >= {found['threshold']:.4f} "
            f"({found['rule']}); val precision {val['precision']:.4f}, recall {val['recall']:.4f}"
        )
    return temperature, added


def val_logits(
    exporter: Any, module: nn.Module, dataset: Any, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """The eager module's outputs and the targets on the val split, in order."""
    outputs, targets = [], []
    with torch.no_grad():
        for x, y in exporter.batches(dataset, batch_size):
            outputs.append(module(x).float().numpy())
            targets.append(np.asarray(y))
    return np.concatenate(outputs), np.concatenate(targets).astype(int)


def calibrated_module(
    options: Any, exporter: Any, module: nn.Module, dataset: Any, names: list[str]
) -> tuple[nn.Module, dict[str, Any]]:
    """The module to export (tempered with ``--calibrate``) and model.json's ``output``
    additions; the module itself and nothing added when no option asks."""
    rule = check_adjustments(options, bool(exporter.calibratable), names)
    if not getattr(options, "calibrate", False) and rule is None:
        return module, {}
    logits, target = val_logits(exporter, module, dataset, options.batch_size)
    temperature, added = adjust(options, logits, target, names, rule)
    return (Tempered(module, temperature) if temperature else module), added
