"""Choosing the budget: the items most in need of a label (``scores.py``), spread over the
embedding space by greedy k-center among the most uncertain ``candidates`` (several times the
budget), so that near-copies of one confusing image do not fill the whole budget."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from mlcycle.selection.label_next.kcenter import k_center, normalized
from mlcycle.selection.label_next.pool import Pool
from mlcycle.selection.label_next.scores import ranking, score

CANDIDATES_PER_PICK = 5  # k-center chooses among the 5 x budget most uncertain items


@dataclass
class Pick:
    """One item to label: its index in the pool, its score and why it was picked."""

    index: int
    score: float
    reason: str
    predicted: str


def why(pool: Pool, index: int, by: str, value: float) -> str:
    """The reason a person reads: the measure, and the classes the model hesitates between
    (or the members' votes)."""
    mean = pool.members[:, index].mean(axis=0)
    names = pool.class_names
    between = " vs ".join(f"{names[k]} {mean[k]:.2f}" for k in np.argsort(-mean, kind="stable")[:2])
    if by in ("vote", "kl"):
        votes = Counter(names[int(k)] for k in pool.members[:, index].argmax(axis=1))
        told = ", ".join(f"{c} {n}" for c, n in votes.most_common())
        measure = "vote entropy" if by == "vote" else "mean KL"
        return f"members disagree ({measure} {value:.3f}; votes {told} of {len(pool.members)})"
    if by == "margin":
        return f"small margin {1 - value:.3f} ({between})"
    if by == "least":
        return f"low confidence {1 - value:.3f} ({between})"
    return f"high entropy {value:.3f} ({between})"


def choose(
    pool: Pool, by: str, budget: int, spread: bool = True, candidates: int | None = None
) -> list[Pick]:
    """``budget`` picks (at most the pool), most in need first; with ``spread``, each after the
    first is the candidate farthest from the picks before it."""
    scores = score(pool.members, by)
    order = ranking(scores)
    budget = min(budget, len(order))
    if spread and budget > 1:
        many = candidates or CANDIDATES_PER_PICK * budget
        shortlist = order[: max(budget, min(many, len(order)))]
        embeddings = pool.embeddings[shortlist]
        if pool.embedding_kind == "penultimate output":
            embeddings = normalized(embeddings)
        chosen, distances = k_center(embeddings, budget, first=0)
        indices = [int(shortlist[c]) for c in chosen]
    else:
        indices, distances = [int(i) for i in order[:budget]], [0.0] * budget
    picks = []
    for rank, (i, distance) in enumerate(zip(indices, distances, strict=True)):
        reason = why(pool, i, by, float(scores[i]))
        if spread and rank > 0:
            reason += f"; far from earlier picks ({pool.embedding_kind} distance {distance:.3f})"
        predicted = pool.class_names[int(pool.members[:, i].mean(axis=0).argmax())]
        picks.append(Pick(i, float(scores[i]), reason, predicted))
    return picks
