"""How much an item needs a label, from class probabilities: higher means more in need.

One model: ``margin`` (1 - (p1 - p2)), ``entropy`` (normalized to [0, 1]) and ``least``
confidence (1 - p1). Several models (ensemble or fold members): ``vote`` entropy of their
top-1 votes and ``kl``, the mean Kullback-Leibler divergence of each member from their mean
(the disagreement of query by committee, McCallum and Nigam 1998).
"""

from __future__ import annotations

import numpy as np

UNCERTAINTY = ("margin", "entropy", "least")
DISAGREEMENT = ("vote", "kl")
EPS = 1e-12


def margin(probs: np.ndarray) -> np.ndarray:
    """1 - (best - second best) per row of ``probs`` [N, C]."""
    top = np.sort(probs, axis=1)[:, ::-1]
    second = top[:, 1] if top.shape[1] > 1 else np.zeros(len(top))
    return 1.0 - (top[:, 0] - second)


def entropy(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy per row, divided by log(C) so that a uniform row scores 1."""
    p = np.clip(probs, EPS, 1.0)
    h = -(probs * np.log(p)).sum(axis=1)
    return h / np.log(probs.shape[1]) if probs.shape[1] > 1 else h


def least_confidence(probs: np.ndarray) -> np.ndarray:
    """1 - the best class's probability per row."""
    return 1.0 - probs.max(axis=1)


def vote_entropy(members: np.ndarray) -> np.ndarray:
    """Entropy of the members' top-1 votes per item (``members`` [M, N, C]), normalized so
    that the widest possible split scores 1."""
    m, _, c = members.shape
    votes = members.argmax(axis=2)  # [M, N]
    shares = np.stack([(votes == k).mean(axis=0) for k in range(c)], axis=1)  # [N, C]
    h = -(shares * np.log(np.clip(shares, EPS, 1.0))).sum(axis=1)
    widest = np.log(min(m, c))
    return h / widest if widest > 0 else h


def mean_kl(members: np.ndarray) -> np.ndarray:
    """Mean over members of KL(member || mean of members) per item; 0 when all agree."""
    mean = members.mean(axis=0, keepdims=True)
    p = np.clip(members, EPS, 1.0)
    kl = (members * (np.log(p) - np.log(np.clip(mean, EPS, 1.0)))).sum(axis=2)
    return kl.mean(axis=0)


SCORES = {
    "margin": margin,
    "entropy": entropy,
    "least": least_confidence,
}


def score(members: np.ndarray, by: str) -> np.ndarray:
    """Each item's need of a label by ``by``; ``members`` [M, N, C] (M = 1 for one model).
    The uncertainty measures read the members' mean probabilities."""
    if by == "vote":
        return vote_entropy(members)
    if by == "kl":
        return mean_kl(members)
    return SCORES[by](members.mean(axis=0))


def default_by(n_members: int) -> str:
    """``kl`` when several models can disagree, else ``margin``."""
    return "kl" if n_members > 1 else "margin"


def ranking(scores: np.ndarray) -> np.ndarray:
    """Item indices, most in need first (ties keep the pool's order)."""
    return np.argsort(-scores, kind="stable")
