#!/usr/bin/env python
"""Out-of-fold macro F1 of a comparison's shortlist ensemble, per method, against the best
single model.

    python scripts/compare.py --config configs/compare/digits.yaml --out runs/compare/digits
    python benchmarks/ensemble_digits.py runs/compare/digits [--shortlist FILE]

Two blocks: the members ensemble.py puts into one graph (deep ones taking the same input), and
every shortlist member including classic ones (a score only: those cannot be exported as one
graph). Soft voting is scored as is; weighted and stacking are cross-fitted over the
comparison's folds (fit on the other folds' out-of-fold rows), so no number is in-sample.
Nothing is trained and the test split is not read.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import yaml

from mlcycle.images.selection.ensemble_members import from_shortlist
from mlcycle.selection.ensemble import combine
from mlcycle.selection.ensemble.members import locate
from mlcycle.selection.ensemble.methods import score_methods
from mlcycle.selection.scores import fold_scores


def block(title: str, names: list[str], oof: dict[str, np.ndarray]) -> None:
    probs, target, folds = oof["probs"], oof["target"], oof["folds"]
    classes = probs.shape[2]
    singles = [fold_scores(p, target, classes) for p in probs]
    best = int(np.argmax([s["f1"] for s in singles]))
    outcomes = score_methods(list(combine.METHODS), probs, target, folds, classes)
    print(f"\n{title}: {', '.join(names)} ({len(target)} images, {len(np.unique(folds))} folds)")
    print(f"{'':<28}  {'macro F1':>8}  {'log loss':>8}  {'vs best single':>14}")
    reference = singles[best]["f1"]
    print(f"{'best single: ' + names[best]:<28}  {reference:8.4f}  {singles[best]['loss']:8.4f}")
    for o in outcomes:
        label = f"{o.method} (cross-fitted)" if o.cross_fitted else o.method
        gain = o.scores["f1"] - reference
        print(f"{label:<28}  {o.scores['f1']:8.4f}  {o.scores['loss']:8.4f}  {gain:+14.4f}")


def every_member(shortlist: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    """Every shortlist member's out-of-fold probabilities, classic ones included."""
    document = yaml.safe_load(shortlist.read_text())
    names, loaded = [], []
    for entry in document["members"]:
        name = str(entry["name"])
        path = locate(str(entry.get("oof", "")), shortlist.parent / "candidates" / name / "oof.npz")
        names.append(name)
        loaded.append(np.load(path))
    oof = {
        "probs": np.stack([o["probs"] for o in loaded]),
        "target": loaded[0]["target"],
        "folds": loaded[0]["folds"],
    }
    return names, oof


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("comparison", help="a compare.py folder (holding shortlist.yaml)")
    parser.add_argument(
        "--shortlist", default="shortlist.yaml", help="file in it (or shortlist_deep.yaml)"
    )
    args = parser.parse_args()
    shortlist = Path(args.comparison) / args.shortlist
    source = from_shortlist(shortlist)
    for item in source.left_out:
        print(f"left out of the graph: {item['name']} ({item['reason']})")
    assert source.oof is not None
    block("ensemble.py's members (one graph)", [m.name for m in source.members], source.oof)
    names, oof = every_member(shortlist)
    block("every shortlist member (classic ones cannot be exported with them)", names, oof)


if __name__ == "__main__":
    main()
