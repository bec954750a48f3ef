"""Why a run is (not) learning: rules over the per-epoch record, each finding with a next step.

A row per epoch holds ``epoch``, ``train/loss``, ``val/loss``, optionally ``train/error`` and
``val/error``, the monitored metric, and ``train/grad_norm_mean`` / ``train/grad_norm_max``.
``docs/training.md`` lists the rules with their thresholds; ``finding`` holds what they return.
"""

from __future__ import annotations

import math
from itertools import pairwise

from mlcycle.callbacks.chance import Chance
from mlcycle.callbacks.finding import NEXT, Finding, short

GROWING_EPOCHS = 3  # train loss rising this many epochs running: diverging
LOSS_TOLERANCE = 0.02  # a loss that fell less than this (relative) did not fall
DIVERGE_RISE = 0.10  # a loss this much (relative) above the first epoch's: diverging
CHANCE_MARGIN = 0.01  # a metric within this of the chance floor has learned nothing
CHANCE_LOSS_FACTOR = 2.0  # train and val loss above this times ln(classes): diverging
EXPLODE_NORM = 1e3  # a step's gradient norm above this: exploding
EXPLODE_RATIO = 100.0  # ... or above this times the lowest epoch mean so far
VANISH_NORM = 1e-6  # an epoch's mean gradient norm below this: vanishing
VANISH_RATIO = 1e-3  # ... or below this times the first epoch's, with the loss still high

PROBLEMS = ("diverging", "flat", "at_chance", "exploding_gradients", "vanishing_gradients")

# --- once per epoch: over- and under-fitting -------------------------------------------------


def diagnose(rows: list[dict[str, float]], num_classes: int) -> Finding | None:
    """An over- or under-fitting finding for the last epoch of ``rows``, or ``None``.

    Over-fitting: val loss rose two epochs running (by 2% or more) while train loss fell and
    the model learned something (train error below 90% of chance error), or the val-train
    error gap widened two epochs running and now exceeds 5 points. Under-fitting: train and
    val error both high (above 30% of chance error, and 10%) while train loss moved under 2%
    in two epochs. Rows without errors (detection) get the loss rule only.
    """
    if len(rows) < 3:
        return None
    a, b, c = rows[-3:]
    epoch = int(c.get("epoch", len(rows)))
    tl, vl = [r["train/loss"] for r in (a, b, c)], [r["val/loss"] for r in (a, b, c)]
    errors = all("train/error" in r and "val/error" in r for r in (a, b, c))
    chance_error = 1 - 1 / max(num_classes, 2)
    learned = not errors or c["train/error"] < 0.9 * chance_error
    if vl[0] < vl[1] < vl[2] and vl[2] > 1.02 * vl[0] and tl[0] > tl[1] > tl[2] and learned:
        return Finding(
            "overfitting",
            epoch,
            "val loss rose 2 epochs while train loss fell",
            NEXT["overfitting"],
            {"train/loss": tl, "val/loss": vl},
            "epoch",
        )
    if not errors:
        return None
    gap = [r["val/error"] - r["train/error"] for r in (a, b, c)]
    if gap[0] < gap[1] < gap[2] and gap[2] > 0.05:
        return Finding(
            "overfitting",
            epoch,
            f"train-val error gap widened 2 epochs to {gap[2]:.1%}",
            NEXT["overfitting"],
            {"train/error": c["train/error"], "val/error": c["val/error"], "gap": gap[2]},
            "epoch",
        )
    high = max(0.1, 0.3 * chance_error)
    flat = abs(tl[0] - tl[2]) / max(abs(tl[0]), 1e-8) < LOSS_TOLERANCE
    if c["train/error"] > high and c["val/error"] > high and flat:
        return Finding(
            "underfitting",
            epoch,
            f"train and val error above {high:.0%} and train loss flat",
            NEXT["underfitting"],
            {"train/error": c["train/error"], "val/error": c["val/error"], "train/loss": tl},
            "epoch",
        )
    return None


# --- at the end of the run -------------------------------------------------------------------


def conclude(
    rows: list[dict[str, float]], monitor: str, mode: str, chance: Chance | None
) -> list[Finding]:
    """The run's findings: diverging, flat, at chance, exploding or vanishing gradients; or,
    when none of these, one ``learning`` finding that says how far above chance it got."""
    rows = [r for r in rows if "train/loss" in r and "val/loss" in r]
    if not rows:
        return []
    findings = [
        f
        for f in (
            _diverging(rows, chance),
            _exploding(rows),
            _vanishing(rows),
        )
        if f
    ]
    if not any(f.kind == "diverging" for f in findings):
        flat = _flat(rows, chance, monitor)
        findings += [flat] if flat else []
    low = _at_chance(rows, monitor, mode, chance, findings)
    if low:
        findings.append(low)
    if not any(f.kind in PROBLEMS for f in findings):
        findings.append(_learning(rows, monitor, mode, chance))
    return findings


def _epoch(row: dict[str, float]) -> int:
    return int(row["epoch"])


def _diverging(rows: list[dict[str, float]], chance: Chance | None) -> Finding | None:
    first, last = rows[0], rows[-1]
    t0, t1, v0, v1 = first["train/loss"], last["train/loss"], first["val/loss"], last["val/loss"]
    values = {
        "train/loss first": t0,
        "train/loss last": t1,
        "val/loss first": v0,
        "val/loss last": v1,
    }
    reason = None
    if not (math.isfinite(t1) and math.isfinite(v1)):
        reason = f"the loss is not finite (train {t1}, val {v1})"
    elif chance and chance.loss and min(t1, v1) > CHANCE_LOSS_FACTOR * chance.loss:
        values["chance loss"] = chance.loss
        reason = (
            f"train loss {short(t1)} and val loss {short(v1)} are above {CHANCE_LOSS_FACTOR:g}x "
            f"the loss of predicting every class as equally likely (ln K = {chance.loss:.4f})"
        )
    elif len(rows) >= 2 and t1 > (1 + DIVERGE_RISE) * t0:
        reason = f"train loss {short(t1)} is above the first epoch's {short(t0)}"
    elif len(rows) >= 2 and v1 > (1 + DIVERGE_RISE) * v0 and t1 >= (1 - LOSS_TOLERANCE) * t0:
        # val loss up while train loss falls is over-fitting, not divergence
        reason = f"val loss {short(v1)} is above the first epoch's {short(v0)} and train loss did not fall"
    else:
        tail = [r["train/loss"] for r in rows[-(GROWING_EPOCHS + 1) :]]
        if len(tail) == GROWING_EPOCHS + 1 and all(a < b for a, b in pairwise(tail)):
            values["train/loss tail"] = tail
            reason = f"train loss grew {GROWING_EPOCHS} epochs running, to {short(t1)}"
    if reason is None:
        return None
    return Finding("diverging", _epoch(last), reason, NEXT["lower_lr"], values)


def _flat(rows: list[dict[str, float]], chance: Chance | None, monitor: str) -> Finding | None:
    if len(rows) < 2:
        return None
    first = rows[0]
    best_t = min(r["train/loss"] for r in rows)
    best_v = min(r["val/loss"] for r in rows)
    t0, v0 = first["train/loss"], first["val/loss"]
    if best_t < (1 - LOSS_TOLERANCE) * t0 or best_v < (1 - LOSS_TOLERANCE) * v0:
        return None
    if chance and chance.loss and v0 < 0.5 * chance.loss:
        return None  # low from the first epoch on: it learned, then stopped improving
    return Finding(
        "flat",
        _epoch(rows[-1]),
        f"the loss did not decrease from the first epoch (train {short(t0)} -> best {short(best_t)}, "
        f"val {short(v0)} -> best {short(best_v)})",
        NEXT["raise_lr"],
        {
            "train/loss first": t0,
            "train/loss best": best_t,
            "val/loss first": v0,
            "val/loss best": best_v,
        },
    )


def _exploding(rows: list[dict[str, float]]) -> Finding | None:
    lowest = math.inf
    for row in rows:
        mean, top = row.get("train/grad_norm_mean"), row.get("train/grad_norm_max")
        if mean is None or top is None:
            continue
        lowest = min(lowest, mean)
        if not math.isfinite(top) or top > EXPLODE_NORM or top > EXPLODE_RATIO * lowest:
            return Finding(
                "exploding_gradients",
                _epoch(row),
                f"a step's gradient norm reached {short(top)} (epoch mean {short(mean)}, "
                f"lowest epoch mean so far {short(lowest)})",
                NEXT["clip"],
                {"train/grad_norm_max": top, "train/grad_norm_mean": mean, "lowest mean": lowest},
            )
    return None


def _vanishing(rows: list[dict[str, float]]) -> Finding | None:
    norms = [r for r in rows if "train/grad_norm_mean" in r]
    if not norms:
        return None
    first = norms[0]
    g0, t0 = first["train/grad_norm_mean"], first["train/loss"]
    for row in norms:
        g = row["train/grad_norm_mean"]
        stuck = row["train/loss"] >= 0.5 * t0 and g < VANISH_RATIO * g0
        if g < VANISH_NORM or stuck:
            return Finding(
                "vanishing_gradients",
                _epoch(row),
                f"the mean gradient norm fell to {short(g)} (first epoch {short(g0)})",
                NEXT["vanishing"],
                {
                    "train/grad_norm_mean": g,
                    "first epoch mean": g0,
                    "train/loss": row["train/loss"],
                },
            )
    return None


def _best(rows: list[dict[str, float]], monitor: str, mode: str) -> dict[str, float] | None:
    scored = [r for r in rows if monitor in r and math.isfinite(r[monitor])]
    if not scored:
        return None
    return (max if mode == "max" else min)(scored, key=lambda r: r[monitor])


def _at_chance(
    rows: list[dict[str, float]],
    monitor: str,
    mode: str,
    chance: Chance | None,
    findings: list[Finding],
) -> Finding | None:
    best = _best(rows, monitor, mode)
    if chance is None or mode != "max" or best is None:
        return None
    value = best[monitor]
    if value > chance.value + CHANCE_MARGIN:
        return None
    kinds = {f.kind for f in findings}
    if kinds & {"diverging", "exploding_gradients"}:
        next_step = NEXT["lower_lr"]
    elif kinds & {"flat", "vanishing_gradients"}:
        next_step = NEXT["raise_lr"]
    else:
        next_step = (
            f"check the labels: see {chance.gallery} and run scripts/validate_data.py; "
            "then try another learning rate: run --find_lr"
        )
    return Finding(
        "at_chance",
        _epoch(best),
        f"best {monitor} {value:.4f} (epoch {_epoch(best)}) is at or below {chance.describe()}",
        next_step,
        {monitor: value, "chance": chance.value, **chance.baselines},
    )


def _learning(
    rows: list[dict[str, float]], monitor: str, mode: str, chance: Chance | None
) -> Finding:
    best = _best(rows, monitor, mode)
    name = monitor.removeprefix("val/")
    if best is None:
        return Finding(
            "learning",
            _epoch(rows[-1]),
            f"val loss {short(rows[0]['val/loss'])} -> {short(rows[-1]['val/loss'])}",
            values={"val/loss first": rows[0]["val/loss"], "val/loss last": rows[-1]["val/loss"]},
        )
    value = best[monitor]
    if chance is None:
        text = f"val {name} {value:.4f} (no chance level known for {monitor})"
        values = {monitor: value}
    else:
        text = f"val {name} {value:.4f} vs {chance.describe()}"
        values = {monitor: value, "chance": chance.value, **chance.baselines}
    return Finding("learning", _epoch(best), text, None, values)


def did_not_learn(findings: list[Finding]) -> Finding | None:
    """The finding that says the best model is at or below chance, if any."""
    return next((f for f in findings if f.kind == "at_chance"), None)
