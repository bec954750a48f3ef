"""Nested, stratified shares of each fold's training samples, as a pool's fold plan.

Within each stratum (a class; a quantile bin of a regression target; one stratum for samples
without a class) the fold's training samples are ordered by a seeded draw of their key, and a
share ``s`` keeps the first ``max(1, round(s * n))`` of them. The order does not depend on the
share, so every smaller subset lies inside the larger one. The fold's validation samples stay
whole at every size; the training samples left out are ``unused`` in the fold files (the role
time-ordered folds already give the rows no fold reads).
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from mlcycle.core.errors import UserError
from mlcycle.data.splits import draw
from mlcycle.selection.folds import UNUSED, Pool

REGRESSION_BINS = 5


def strata_of(target: np.ndarray) -> np.ndarray:
    """A stratum per sample: its class index, or a quantile bin of a continuous target."""
    target = np.asarray(target)
    if np.issubdtype(target.dtype, np.integer):
        return target.astype(np.int64)
    edges = np.unique(np.quantile(target, np.linspace(0, 1, REGRESSION_BINS + 1)[1:-1]))
    return np.searchsorted(edges, target, side="right").astype(np.int64)


def nested_subset(keys: list[str], strata: list[int], share: float, seed: int) -> set[str]:
    """The keys a share keeps: per stratum, the first of a seeded order of the keys."""
    by_stratum: dict[int, list[str]] = {}
    for key, stratum in zip(keys, strata, strict=True):
        by_stratum.setdefault(stratum, []).append(key)
    kept: set[str] = set()
    for members in by_stratum.values():
        order = sorted(members, key=lambda k: (draw(seed, f"curve:{k}"), k))
        kept.update(order[: max(1, round(share * len(order)))])
    return kept


def pool_at(pool: Pool, folds: int, share: float, seed: int) -> tuple[Pool, list[int]]:
    """``pool`` with each fold training on ``share`` of its training samples (the others
    unused); and the number of training samples per fold."""
    stratum = dict(zip(pool.paths, strata_of(pool.target).tolist(), strict=True))
    roles = [pool.roles(fold) for fold in range(folds)]
    counts = []
    for fold_roles in roles:
        train = [key for key, role in fold_roles.items() if role == "train"]
        if not train:
            raise UserError("a fold has no training samples; use fewer --folds")
        # samples outside the pool (time folds' oldest block, which only trains): one stratum
        kept = nested_subset(train, [stratum.get(k, -1) for k in train], share, seed)
        counts.append(len(kept))
        for key in train:
            if key not in kept:
                fold_roles[key] = UNUSED
    plan = {key: [roles[fold][key] for fold in range(folds)] for key in roles[0]}
    digest = hashlib.sha256(f"{pool.digest}:{share}:{seed}".encode()).hexdigest()
    return dataclasses.replace(pool, plan=plan, digest=digest), counts


def pool_scoring_training(pool: Pool, fold: int) -> Pool:
    """``pool`` (at a size) whose fold ``fold`` is fitted on its training rows and predicts those
    same rows: the training score of a model fitted in-process (no run to evaluate)."""
    rows = pool.fold_rows(fold)[0]
    folds = np.full(len(pool), -1)
    folds[rows] = fold
    return dataclasses.replace(pool, folds=folds)
