"""What label-issues finds, item by item: likely label errors (confident learning on
held-out probabilities), near-duplicates with conflicting labels and outliers (from
embeddings). Items are rows of ``probs``; nothing here knows the kind of data."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mlcycle.core.extras import needs_extras

NEAR_FACTOR = 0.13  # near-duplicate: nearest neighbour closer than this share of the median's
OUTLIER_SHARE = 0.01  # the most outlying share of the items is listed
MIN_FOR_NEIGHBOURS = 20  # fewer items: no near-duplicates or outliers (too few neighbours)


@dataclass
class Issue:
    """One item's finding: ``row`` into the inputs, the label suggested, a score in 0..1
    (higher: more likely a problem) and the reason in words."""

    row: int
    kind: str  # label, near-duplicate, outlier
    suggested: int
    score: float
    reason: str


def label_issues(given: np.ndarray, probs: np.ndarray) -> list[Issue]:
    """Likely label errors, most likely first: cleanlab's ``find_label_issues`` ranked by
    self-confidence (the held-out probability of the given label); score 1 - that."""
    with needs_extras("mlcycle label-issues"):
        from cleanlab.filter import find_label_issues
        from cleanlab.rank import get_label_quality_scores
    given = np.asarray(given, dtype=np.int64)
    ranked = find_label_issues(given, probs, return_indices_ranked_by="self_confidence")
    quality = get_label_quality_scores(given, probs, method="self_confidence")
    suggested = probs.argmax(axis=1)
    return [
        Issue(int(i), "label", int(suggested[i]), float(1 - quality[i]), "label issue")
        for i in ranked
    ]


def unit_rows(features: np.ndarray) -> np.ndarray:
    x = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def near_duplicates(
    features: np.ndarray, given: np.ndarray, probs: np.ndarray, names: list[str], keys: list[str]
) -> list[Issue]:
    """Items whose nearest neighbour (cosine) is much closer than usual (below
    ``NEAR_FACTOR`` times the median nearest distance) and labelled otherwise."""
    if len(features) < MIN_FOR_NEIGHBOURS:
        return []
    from sklearn.neighbors import NearestNeighbors

    x = unit_rows(features)
    distance, index = NearestNeighbors(n_neighbors=2).fit(x).kneighbors(x)
    nearest, other = distance[:, 1], index[:, 1]
    limit = NEAR_FACTOR * float(np.median(nearest))
    suggested = probs.argmax(axis=1)
    found = []
    for i in np.flatnonzero((nearest <= limit) & (given != given[other])):
        j = int(other[i])
        score = 1.0 - float(nearest[i]) / limit if limit > 0 else 1.0
        why = f"near-duplicate of {keys[j]} labelled '{names[given[j]]}'"
        found.append(Issue(int(i), "near-duplicate", int(suggested[i]), score, why))
    return found


def outliers(features: np.ndarray, probs: np.ndarray, share: float = OUTLIER_SHARE) -> list[Issue]:
    """The most outlying ``share`` of the items: cleanlab's out-of-distribution score (mean
    distance to the nearest neighbours); score 1 - cleanlab's."""
    if len(features) < MIN_FOR_NEIGHBOURS or share <= 0:
        return []
    with needs_extras("mlcycle label-issues"):
        from cleanlab.outlier import OutOfDistribution
    scores = OutOfDistribution().fit_score(features=unit_rows(features), verbose=False)
    picks = np.argsort(scores, kind="stable")[: max(1, math.ceil(share * len(scores)))]
    suggested = probs.argmax(axis=1)
    return [
        Issue(int(i), "outlier", int(suggested[i]), float(1 - scores[i]), "outlier") for i in picks
    ]


def merged(issues: list[Issue]) -> list[Issue]:
    """One issue per item (reasons joined, the highest score), label issues first in their
    rank, then the others by score."""
    by_row: dict[int, Issue] = {}
    for issue in issues:
        known = by_row.get(issue.row)
        if known is None:
            by_row[issue.row] = Issue(**issue.__dict__)
            continue
        known.reason = f"{known.reason}; {issue.reason}"
        known.score = max(known.score, issue.score)
    order = {"label": 0}
    return sorted(by_row.values(), key=lambda i: (order.get(i.kind, 1), -i.score))
