"""What to label next, measured: pool-based active learning on scikit-learn's digits.

Start from 40 labeled images, then 6 rounds of 30 picks each from a pool of unlabeled ones. The
picks come from random sampling (the baseline), margin alone, or margin spread by greedy
k-center: label-next's ``choose`` with its own scores. After each round a logistic regression
is refit and scored on a held-out quarter. Mean test accuracy over seeds, per round:

    .venv/bin/python benchmarks/label_next_digits.py [--seeds 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from mlcycle.selection.label_next.pick import choose
from mlcycle.selection.label_next.pool import Pool

START, ROUNDS, PICKS = 40, 6, 30


def fit(x: np.ndarray, y: np.ndarray) -> LogisticRegression:
    return LogisticRegression(max_iter=2000).fit(x, y)


def picks(strategy: str, model: LogisticRegression, x_pool: np.ndarray, rng) -> list[int]:
    if strategy == "random":
        return rng.choice(len(x_pool), PICKS, replace=False).tolist()
    probs = np.zeros((len(x_pool), 10))
    probs[:, model.classes_] = model.predict_proba(x_pool)
    n = len(x_pool)
    # embeddings: the pixels (a stand-in for a network's penultimate output)
    pool = Pool([str(i) for i in range(n)], probs[None], [str(c) for c in range(10)], x_pool,
                "pixels", [None] * n, [None] * n)  # fmt: skip
    return [p.index for p in choose(pool, "margin", PICKS, spread=strategy == "margin+k-center")]


def curve(strategy: str, seed: int) -> list[float]:
    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    x_pool, x_test, y_pool, y_test = train_test_split(
        x, y, test_size=0.25, stratify=y, random_state=seed
    )
    rng = np.random.default_rng(seed)
    labeled = rng.choice(len(x_pool), START, replace=False).tolist()
    scores = []
    for _ in range(ROUNDS + 1):
        model = fit(x_pool[labeled], y_pool[labeled])
        scores.append(model.score(x_test, y_test))
        rest = np.setdiff1d(np.arange(len(x_pool)), labeled)
        chosen = picks(strategy, model, x_pool[rest], rng)
        labeled += rest[chosen].tolist()
    return scores


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=5)
    args = p.parse_args()
    clock = time.perf_counter()
    sizes = [START + PICKS * r for r in range(ROUNDS + 1)]
    print(f"{'labeled':<15}" + "".join(f" {s:>6}" for s in sizes))
    for strategy in ("random", "margin", "margin+k-center"):
        mean = np.mean([curve(strategy, seed) for seed in range(args.seeds)], axis=0)
        print(f"{strategy:<15}" + "".join(f" {a:6.3f}" for a in mean))
    print(f"(test accuracy, mean of {args.seeds} seeds; {time.perf_counter() - clock:.0f} s)")


if __name__ == "__main__":
    main()
