"""The checks of one window against the reference: each a dict with the check's name, what it
is about (``subject``), its ``value``, ``threshold``, whether it was ``judged`` (enough rows)
and whether it is ``flagged``, plus the numbers behind it."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats as scipy_stats

from mlcycle.monitor import drift
from mlcycle.monitor.binning import bin_counts
from mlcycle.serve.stats import STATS


def check(
    name: str,
    subject: str,
    value: Any,
    threshold: Any,
    judged: bool | None = None,
    flagged: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """One check's record; not judged (too few rows, no value) means never flagged."""
    judged = value is not None if judged is None else bool(judged and value is not None)
    return {
        "check": name,
        "subject": subject,
        "value": value,
        "threshold": threshold,
        "judged": judged,
        "flagged": bool(judged and flagged),
        **extra,
    }


def _values(rows: list[dict[str, Any]], column: str) -> np.ndarray:
    found = [r.get(column) for r in rows]
    arr = np.asarray([v for v in found if v is not None], dtype=np.float64)
    return arr[np.isfinite(arr)]


def _psi_check(name: str, subject: str, ref_counts: list, counts: list, t: dict) -> dict:
    n = int(sum(counts))
    value = drift.psi(ref_counts, counts)
    noise = drift.psi_noise(ref_counts, n, t["psi_noise_quantile"])
    limit = t["class_psi"] if name == "class_psi" else t["psi"]
    return check(
        name, subject, round(value, 6), limit, rows=n, noise=round(noise, 6),
        judged=n >= t["min_rows"], flagged=value > limit and value > noise,
    )  # fmt: skip


def _ks_check(name: str, subject: str, values: np.ndarray, sample: list, t: dict) -> dict:
    if len(values) == 0 or not sample:
        return check(name, subject, None, t["ks_p"], rows=len(values))
    statistic, p = drift.ks(values, sample)
    return check(
        name, subject, p, t["ks_p"], rows=len(values), statistic=round(statistic, 6),
        judged=len(values) >= max(t["ks_min_rows"], t["min_rows"]),
        flagged=p < t["ks_p"] and statistic >= t["ks_min_statistic"],
    )  # fmt: skip


def input_checks(rows: list[dict], reference: dict, t: dict) -> list[dict]:
    """Per input statistic: PSI on the reference's bins and KS against its sample."""
    found = reference["splits"][t["reference_split"]]["statistics"]
    checks = []
    for name in STATS:
        ref, values = found.get(name) or {}, _values(rows, name)
        if not ref.get("count"):
            continue
        counts = bin_counts(ref["edges"], values)
        checks.append(_psi_check("input_psi", name, ref["counts"], counts, t))
        checks.append(_ks_check("input_ks", name, values, ref["sample"], t))
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
        _psi_check("class_psi", "predicted", ref_counts, list(counts.values()), t),
    ]  # fmt: skip


def confidence_checks(rows: list[dict], predictions: dict, t: dict) -> list[dict]:
    """Confidence: KS against val's sample, and the shift of its mean."""
    # 6 decimals, as the server reports it and reference.json keeps it: float noise near 1.0
    # must not look like a shifted distribution to a KS test
    conf, ref = np.round(_values(rows, "confidence"), 6), predictions["confidence"]
    checks = [_ks_check("confidence_ks", "confidence", conf, ref.get("sample"), t)]
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


# What a window is compared with, by what the reference's val predictions hold (each output
# form's summary says what it has: val_predictions.py), in this order.
PREDICTION_CHECKS = (
    ("classes", class_checks),
    ("confidence", confidence_checks),
    ("accuracy", performance_checks),
)


def window_checks(rows: list[dict], reference: dict, t: dict) -> list[dict]:
    """Every check of one window: the inputs, then each part of the val predictions the
    reference holds (predicted classes, confidence, performance from feedback)."""
    checks = input_checks(rows, reference, t)
    predictions = reference.get("predictions") or {}
    for key, checked in PREDICTION_CHECKS:
        if predictions.get(key) not in (None, {}):
            checks += checked(rows, predictions, t)
    return checks


def window_summary(rows: list[dict]) -> dict[str, Any]:
    """What the figures draw besides the checks: predicted-class counts, feedback count."""
    predicted = [str(r["predicted"]) for r in rows if r.get("predicted") is not None]
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
