"""The checks of one window against the reference: the inputs (by the model's input kind:
:data:`INPUT_CHECKS`), then the predictions and the performance from feedback. Each check is
a record of ``record.py``: name, ``subject``, ``value``, ``threshold``, ``judged``,
``flagged`` and the numbers behind it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

from mlcycle.core.registry import Registry
from mlcycle.monitor import drift
from mlcycle.monitor.binning import bin_counts
from mlcycle.monitor.columns import column_checks
from mlcycle.monitor.estimate import estimate_checks
from mlcycle.monitor.feedback_values import value_checks
from mlcycle.monitor.record import check, ks_check, psi_check, values
from mlcycle.serve.stats import STATS


def input_checks(rows: list[dict], reference: dict, t: dict) -> list[dict]:
    """Per input statistic: PSI on the reference's bins and KS against its sample."""
    found = reference["splits"][t["reference_split"]]["statistics"]
    checks = []
    for name in STATS:
        ref, seen = found.get(name) or {}, values(rows, name)
        if not ref.get("count"):
            continue
        counts = bin_counts(ref["edges"], seen)
        checks.append(psi_check("input_psi", name, ref["counts"], counts, t))
        checks.append(ks_check("input_ks", name, seen, ref["sample"], t))
    return checks


def class_checks(rows: list[dict], predictions: dict, t: dict) -> list[dict]:
    """Predicted classes (the store's ``predicted``): chi-square and PSI against val's."""
    reference = predictions["classes"]
    counts = drift.class_counts(
        [str(r["predicted"]) for r in rows if r.get("predicted")], reference
    )
    chi2 = drift.class_chi2(counts, reference)
    n = sum(counts.values())
    ref_counts = [reference.get(c, 0) for c in counts]
    return [
        check(
            "class_chi2", "predicted", chi2["p"], t["chi2_p"], rows=n, cells=chi2["cells"],
            effect_w=chi2["w"], judged=chi2["p"] is not None and n >= t["min_rows"],
            flagged=(chi2["p"] or 1) < t["chi2_p"] and (chi2["w"] or 0) >= t["chi2_min_effect"],
        ),
        psi_check("class_psi", "predicted", ref_counts, list(counts.values()), t),
    ]  # fmt: skip


def confidence_checks(rows: list[dict], predictions: dict, t: dict) -> list[dict]:
    """Confidence: KS against val's sample, and the shift of its mean."""
    # 6 decimals, as the server reports it and reference.json keeps it: float noise near 1.0
    # must not look like a shifted distribution to a KS test
    conf, ref = np.round(values(rows, "confidence"), 6), predictions["confidence"]
    checks = [ks_check("confidence_ks", "confidence", conf, ref.get("sample"), t)]
    if len(conf) and ref.get("count"):
        shift = drift.mean_shift(conf, ref["mean"], ref["std"], ref["count"])
        z99 = float(scipy_stats.norm.ppf(0.995))
        checks.append(
            check(
                "confidence_mean", "confidence", round(shift["delta"], 6), t["confidence_shift"],
                rows=len(conf), mean=round(shift["mean"], 6), reference=ref["mean"],
                z=round(shift["z"], 3), judged=len(conf) >= t["min_rows"],
                flagged=abs(shift["delta"]) > t["confidence_shift"] and abs(shift["z"]) > z99,
            )
        )  # fmt: skip
    return checks


def performance_checks(rows: list[dict], predictions: dict, t: dict) -> list[dict]:
    """Accuracy and macro F1 on the rows with feedback, against val's."""
    labelled = [r for r in rows if r.get("label") is not None and r.get("predicted") is not None]
    found = drift.performance(
        [str(r["label"]) for r in labelled], [str(r["predicted"]) for r in labelled]
    )
    judged = found["rows"] >= t["min_feedback"] and found["rows"] > 0
    checks = []
    for name, key, low, high, drop in (
        ("accuracy", "accuracy", "accuracy_low", "accuracy_high", t["accuracy_drop"]),
        ("macro_f1", "macro_f1", "f1_low", "f1_high", t["f1_drop"]),
    ):
        reference = predictions.get(key)
        if reference is None:
            continue
        value = found.get(key)
        checks.append(
            check(
                name, "feedback", None if value is None else round(value, 6),
                round(reference - drop, 6), rows=found["rows"], reference=reference,
                low=found.get(low), high=found.get(high), judged=judged,
                flagged=value is not None and value < reference - drop and found[high] < reference,
            )
        )  # fmt: skip
    return checks


def prediction_checks(rows: list[dict], predictions: dict, t: dict) -> list[dict]:
    """Predicted numbers (a regression: the store's ``predicted``): PSI on val's quantile bins
    and KS against its sample."""
    ref = predictions["prediction"]
    if not ref.get("count"):
        return []
    found = []
    for row in rows:
        try:
            found.append(float(row["predicted"]))
        except (KeyError, TypeError, ValueError):
            continue
    seen = np.asarray(found, dtype=np.float64)
    seen = seen[np.isfinite(seen)]
    return [
        psi_check("prediction_psi", "predicted", ref["counts"], bin_counts(ref["edges"], seen), t),
        ks_check("prediction_ks", "predicted", seen, ref["sample"], t),
    ]


# What a window is compared with, by what the reference's val predictions hold (each output
# form's summary says what it has: val_predictions.py), in this order.
PREDICTION_CHECKS = (
    ("classes", class_checks),
    ("confidence", confidence_checks),
    ("accuracy", performance_checks),
    ("prediction", prediction_checks),
    ("rmse", value_checks),  # numbers predicted: RMSE, MAE and R2 from feedback
)

# How a window's inputs are compared, by model.json's input.kind (reference.json's
# ``input_kind``; images, which declare none, by the store's image statistics); a plugin adds
# its own through the entry point group (name = the input kind, value = the function).
INPUT_CHECKS: Registry[Callable[[list, dict, dict], list]] = Registry(
    "input checks of the monitor", "model.json input.kind", "mlcycle.monitor_inputs"
)
INPUT_CHECKS.add("image", input_checks)
INPUT_CHECKS.add("table", column_checks)


def window_checks(rows: list[dict], reference: dict, t: dict) -> list[dict]:
    """Every check of one window: the inputs, then each part of the val predictions the
    reference holds (predicted classes, confidence, performance from feedback)."""
    checks = INPUT_CHECKS.get(reference.get("input_kind") or "image")(rows, reference, t)
    predictions = reference.get("predictions") or {}
    for key, checked in PREDICTION_CHECKS:
        if predictions.get(key) not in (None, {}):
            checks += checked(rows, predictions, t)
    return checks + estimate_checks(rows, reference, t)


def window_summary(rows: list[dict], classes: bool = True) -> dict[str, Any]:
    """What the figures draw besides the checks: predicted-class counts (when the model
    predicts classes), feedback count."""
    predicted = [str(r["predicted"]) for r in rows if classes and r.get("predicted") is not None]
    classes: dict[str, int] = {}
    for name in predicted:
        classes[name] = classes.get(name, 0) + 1
    versions = sorted({str(r.get("model_version")) for r in rows})
    return {
        "rows": len(rows),
        "feedback": sum(1 for r in rows if r.get("label") is not None),
        "predicted_classes": classes,
        "model_versions": versions,
    }
