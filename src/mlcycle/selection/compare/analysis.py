"""Error analysis of out-of-fold (OOF) predictions: where the candidates fail, whether they fail
together, and which few of them make the best soft-voting ensemble.

Every function takes ``oof``: candidate name -> class probabilities (N, C), all candidates over
the same N images in the same order, and ``target``: the true class (N,) of those images.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from matplotlib.figure import Figure

from mlcycle.reports.figures import gallery_figure, plt


def _check(oof: dict[str, np.ndarray], target: np.ndarray) -> None:
    """All candidates must score the same images: a misaligned OOF silently ruins every number."""
    if not oof:
        raise ValueError("no candidates: oof is empty")
    for name, probs in oof.items():
        if probs.ndim != 2 or probs.shape[0] != len(target):
            raise ValueError(
                f"{name}: probabilities of shape {probs.shape} do not match {len(target)} targets"
            )


def _f1_per_class(pred: np.ndarray, target: np.ndarray, num_classes: int) -> np.ndarray:
    """F1 of every class from the confusion counts; 0 for a class never true nor predicted
    (sklearn's ``zero_division=0``)."""
    flat = target.astype(np.int64) * num_classes + pred.astype(np.int64)
    matrix = np.bincount(flat, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )
    tp = np.diag(matrix).astype(float)
    denominator = matrix.sum(axis=0) + matrix.sum(axis=1)  # 2tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros(num_classes), where=denominator > 0)


def macro_f1(probs: np.ndarray, target: np.ndarray, num_classes: int) -> float:
    """Macro F1 of the arg-max predictions over all ``num_classes`` classes."""
    return float(_f1_per_class(probs.argmax(axis=1), target, num_classes).mean())


def per_class_f1(
    oof: dict[str, np.ndarray], target: np.ndarray, class_names: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Model -> class name -> F1."""
    _check(oof, target)
    table = {}
    for name, probs in oof.items():
        f1 = _f1_per_class(probs.argmax(axis=1), target, len(class_names))
        table[name] = {c: float(v) for c, v in zip(class_names, f1, strict=True)}
    return table


def _annotated_heat_map(
    ax,
    values: np.ndarray,
    rows: Sequence[str],
    cols: Sequence[str],
    cmap: str,
    vmax: float = 1.0,
    fmt: str = ".2f",
) -> None:
    """Values from 0 to ``vmax`` as colour (dark = low), with the number written in each cell
    while they stay legible."""
    vmax = vmax if vmax > 0 else 1.0
    im = ax.imshow(values, cmap=cmap, vmin=0, vmax=vmax, aspect="auto")
    ax.figure.colorbar(im, ax=ax, fraction=0.046)
    ax.set_yticks(range(len(rows)), rows)
    crowded = len(cols) > 6 or max((len(c) for c in cols), default=0) > 6
    ax.set_xticks(range(len(cols)), cols, rotation=90 if crowded else 0)
    if values.size <= 600:
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                colour = "white" if values[i, j] < vmax / 2 else "black"
                ax.text(
                    j,
                    i,
                    format(values[i, j], fmt),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color=colour,
                )


def per_class_f1_figure(table: dict[str, dict[str, float]], class_names: Sequence[str]) -> Figure:
    """Heat map of F1, one row per model and one column per class."""
    names = list(table)
    values = np.array([[table[n][c] for c in class_names] for n in names], dtype=float)
    width = min(max(5.0, 0.6 * len(class_names) + 3), 24)
    height = min(max(2.5, 0.35 * len(names) + 1.5), 20)
    width += 0.08 * max((len(n) for n in names), default=0)  # the model names beside the rows
    fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
    _annotated_heat_map(ax, values, names, list(class_names), "viridis")
    ax.set(xlabel="class", title="out-of-fold F1 per class")
    return fig


def confused_pairs(
    oof: dict[str, np.ndarray], target: np.ndarray, class_names: Sequence[str], top: int = 10
) -> list[dict]:
    """The ``top`` (true, predicted) confusions, counted over all models together: a pair every
    model confuses is a data problem (labels, resolution) more than a model problem."""
    _check(oof, target)
    k = len(class_names)
    by_model = {}
    for name, probs in oof.items():
        flat = target.astype(np.int64) * k + probs.argmax(axis=1)
        by_model[name] = np.bincount(flat, minlength=k * k).reshape(k, k)
    total = sum(by_model.values())
    np.fill_diagonal(total, 0)
    # stable sort on the negated counts: equal counts keep the (true, predicted) order
    order = np.argsort(-total.ravel(), kind="stable")[:top]
    pairs = []
    for flat_index in order:
        i, j = divmod(int(flat_index), k)
        if total[i, j] == 0:
            break
        pairs.append(
            {
                "true": class_names[i],
                "predicted": class_names[j],
                "count": int(total[i, j]),
                "by_model": {name: int(m[i, j]) for name, m in by_model.items()},
            }
        )
    return pairs


def _wrong(oof: dict[str, np.ndarray], target: np.ndarray) -> dict[str, np.ndarray]:
    return {name: probs.argmax(axis=1) != target for name, probs in oof.items()}


def error_correlation(oof: dict[str, np.ndarray], target: np.ndarray) -> dict:
    """Diversity of the candidates: the share of images on which two models predict different
    classes (disagreement), and on which both are wrong (double fault; the diagonal is the error
    rate). An ensemble gains only from models with a low double fault."""
    _check(oof, target)
    names = list(oof)
    pred = np.stack([oof[n].argmax(axis=1) for n in names])
    wrong = (pred != target[None, :]).astype(float)
    n = max(len(target), 1)
    disagreement = (pred[:, None, :] != pred[None, :, :]).sum(axis=2) / n
    double_fault = wrong @ wrong.T / n
    return {
        "names": names,
        "disagreement": disagreement.tolist(),
        "double_fault": double_fault.tolist(),
        "error_rate": {name: float(np.diag(double_fault)[i]) for i, name in enumerate(names)},
    }


def error_correlation_figure(corr: dict) -> Figure:
    """Disagreement and double fault side by side, one row and column per model."""
    names = corr["names"]
    size = min(max(3.5, 0.45 * len(names) + 2), 14)
    # constrained: the left colour bar would otherwise run into the right panel's model names
    labels = 0.08 * max(len(n) for n in names)  # inches the model names take beside and below
    fig, axes = plt.subplots(
        1, 2, figsize=(2 * (size + labels) + 1.5, size + labels), layout="constrained"
    )
    panels = (
        ("disagreement", "disagreement (% of images)", "magma"),
        (
            "double_fault",
            "double fault: both wrong (% of images; diagonal = error rate)",
            "inferno",
        ),
    )
    for ax, (key, title, cmap) in zip(axes, panels, strict=True):
        values = 100 * np.asarray(corr[key], dtype=float).reshape(len(names), len(names))
        # shares of errors are small: scale the colour to the largest one, not to 100%
        _annotated_heat_map(ax, values, names, names, cmap, float(values.max(initial=0)), ".1f")
        ax.set_title(title, fontsize=9)
    return fig


def _ensemble_f1(
    oof: dict[str, np.ndarray], members: Sequence[str], target: np.ndarray, num_classes: int
) -> float:
    return macro_f1(np.mean([oof[m] for m in members], axis=0), target, num_classes)


def _pick(
    oof: dict[str, np.ndarray],
    chosen: list[str],
    remaining: list[str],
    target: np.ndarray,
    num_classes: int,
    wrong: dict[str, np.ndarray],
) -> tuple[str, float]:
    """The candidate whose addition gives the best ensemble F1; on a tie the one that fails least
    often together with the chosen models (mean double fault), then the earlier name."""
    best_key, best = None, None
    for position, name in enumerate(remaining):
        score = _ensemble_f1(oof, [*chosen, name], target, num_classes)
        fault = float(np.mean([(wrong[name] & wrong[c]).mean() for c in chosen]))
        # round so that float noise in equal scores does not decide before the double fault
        key = (-round(score, 12), fault, position)
        if best_key is None or key < best_key:
            best_key, best = key, (name, score)
    return best


def forward_selection(
    first: str,
    first_score: float,
    remaining: list[str],
    pick: Callable[[list[str], list[str]], tuple[str, float]],
    gains: Callable[[float, float], bool],
    k_min: int,
    k_max: int,
) -> list[tuple[str, float]]:
    """Greedy forward selection without replacement, from ``first``: ``pick(chosen, remaining)``
    names the best addition and the ensemble's score with it; it joins while fewer than
    ``k_min`` are chosen, or when ``gains(new, current)``; at most ``k_max``. Returns each
    member with the ensemble's score once it joined, in order."""
    steps, remaining = [(first, first_score)], list(remaining)
    while remaining and len(steps) < k_max:
        name, new = pick([n for n, _ in steps], remaining)
        if len(steps) >= k_min and not gains(new, steps[-1][1]):
            break
        remaining.remove(name)
        steps.append((name, new))
    return steps


def shortlist(
    oof: dict[str, np.ndarray],
    target: np.ndarray,
    num_classes: int,
    k_min: int = 3,
    k_max: int = 5,
    tolerance: float = 0.0,
) -> dict:
    """Greedy forward selection (Caruana-style, without replacement) of the soft-voting ensemble
    with the best out-of-fold macro F1.

    Start with the best single model, then add the candidate that most raises the macro F1 of the
    mean probabilities (ties: lower double fault with the chosen models). At least ``k_min``
    members even when the score does not rise, at most ``k_max``; past ``k_min`` stop when no
    candidate raises the score by more than ``tolerance``. Fewer candidates than ``k_min``: all.
    """
    _check(oof, target)
    k_max = max(k_max, k_min, 1)
    single = {name: macro_f1(probs, target, num_classes) for name, probs in oof.items()}
    best_single = max(single, key=single.__getitem__)  # first of equals: the caller's order
    wrong = _wrong(oof, target)
    steps = forward_selection(
        best_single,
        single[best_single],
        [n for n in oof if n != best_single],
        lambda chosen, remaining: _pick(oof, chosen, remaining, target, num_classes, wrong),
        lambda new, old: new > old + tolerance,
        k_min,
        k_max,
    )
    chosen, score = [name for name, _ in steps], steps[-1][1]
    trace = [{"added": n, "ensemble_f1": f1, "single_f1": single[n]} for n, f1 in steps]
    rule = (
        "Greedy forward selection without replacement on the out-of-fold macro F1 of the "
        "mean-probability ensemble: start from the best single model, add the model that raises "
        "the score most (ties: lower double fault with the chosen models), keep at least "
        f"{k_min} models, stop at {k_max} or when no addition gains more than {tolerance:g}."
    )
    return {
        "members": chosen,
        "trace": trace,
        "rule": rule,
        "best_single": best_single,
        "best_single_f1": single[best_single],
        "ensemble_f1": score,
    }


def highest_loss(
    oof: dict[str, np.ndarray], target: np.ndarray, top: int = 12
) -> dict[str, list[tuple[int, float, int]]]:
    """Per model, the ``top`` images with the highest cross-entropy -log p(true class):
    (row position, loss, predicted class), highest loss first."""
    _check(oof, target)
    result = {}
    rows = np.arange(len(target))
    for name, probs in oof.items():
        # clip: a probability of exactly 0 would give an infinite loss that JSON cannot hold
        loss = -np.log(np.clip(probs[rows, target], 1e-12, 1.0))
        order = np.argsort(-loss, kind="stable")[:top]
        pred = probs.argmax(axis=1)
        result[name] = [(int(i), float(loss[i]), int(pred[i])) for i in order]
    return result


def highest_loss_figure(
    name: str,
    rows: Sequence[tuple[int, float, int]],
    image_of: Callable[[int], np.ndarray],
    class_names: Sequence[str],
    target: np.ndarray,
) -> Figure:
    """Gallery of the images one model got most wrong (``rows`` from :func:`highest_loss`);
    ``image_of(position)`` returns the uint8 HxW or HxWxC image."""
    images, captions = [], []
    for position, loss, pred in rows:
        image = np.asarray(image_of(position))
        images.append(image[..., None] if image.ndim == 2 else image)
        true = class_names[int(target[position])]
        parts = (f"true {true}", f"pred {class_names[pred]}", f"loss {loss:.2f}")
        # one line while it fits the tile, else one part a line
        caption = " / ".join(parts)
        captions.append(caption if len(caption) <= 34 else "\n".join(parts))
    title = f"{name}: highest out-of-fold loss ({len(rows)} images)"
    return gallery_figure(images, captions, title)
