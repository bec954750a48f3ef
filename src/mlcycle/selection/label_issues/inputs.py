"""What label-issues reads: held-out class probabilities with the data they were made on.

* a comparison's folder (``comparison.json``): a candidate's ``oof.npz`` (the best one on
  the leaderboard that has it, or ``--candidate``), every train+val item predicted by the
  fold model that did not train on it; embeddings from the comparison's ``features/`` (a
  backbone's) or a deep candidate's, else the kind of data's own (a table's features);
* a run directory: its best checkpoint's probabilities on its val split, embeddings from the
  run's own network (or a table's features).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlcycle.core.errors import UserError
from mlcycle.selection.label_issues.views import ItemView, view_of


@dataclass
class Inputs:
    """Held-out probabilities of items of ``data`` (``positions``), their given labels."""

    data: Any
    view: ItemView
    positions: list[int]
    given: np.ndarray
    probs: np.ndarray
    class_names: list[str]
    features: np.ndarray | None
    source: str  # what the probabilities are, in words


def read_inputs(path: Path, candidate: str | None) -> Inputs:
    """A comparison's folder or a run directory, by the file it holds."""
    if (path / "comparison.json").is_file():
        return from_comparison(path, candidate)
    if candidate:
        raise UserError(
            f"--candidate is for a comparison's folder; '{path}' has no comparison.json"
        )
    if (path / "config.yaml").is_file():
        return from_run(path)
    raise UserError(
        f"'{path}' is neither a comparison's folder (comparison.json) nor a run directory "
        "(config.yaml); pass the --out of mlcycle compare or a train run"
    )


def chosen_candidate(folder: Path, candidate: str | None) -> str:
    """``candidate``, else the highest on the leaderboard with out-of-fold probabilities."""
    if candidate:
        if not (folder / "candidates" / candidate / "oof.npz").is_file():
            raise UserError(
                f"candidate '{candidate}' has no out-of-fold predictions in '{folder}' "
                "(unknown, failed or not finished); leave --candidate out for the best"
            )
        return candidate
    board = folder / "leaderboard.json"
    rows = json.loads(board.read_text()).get("rows", []) if board.is_file() else []
    for row in rows:
        if (folder / "candidates" / row["candidate"] / "oof.npz").is_file():
            return row["candidate"]
    raise UserError(f"no candidate of '{folder}' has out-of-fold predictions; let compare finish")


def from_comparison(folder: Path, candidate: str | None) -> Inputs:
    from mlcycle.selection.config import build_data, resolve_config

    record = json.loads((folder / "comparison.json").read_text())
    name = chosen_candidate(folder, candidate)
    oof = np.load(folder / "candidates" / name / "oof.npz")
    if "probs" not in oof:
        raise UserError(
            f"candidate '{name}' predicts values; label issues need class probabilities "
            "(a classification comparison)"
        )
    data = build_data(resolve_config(list(record["train_args"])))
    if data.fingerprint != record.get("data_fingerprint"):
        raise UserError(
            f"the data changed since the comparison in '{folder}' ran; run mlcycle compare again"
        )
    view = view_of(data)
    where = view.positions(data)
    keys = [str(k) for k in oof["paths"]]
    positions = [where[k].pop(0) for k in keys]  # identical keys (rows): in turn
    features = stored_features(folder, oof["paths"])
    if features is None:
        features = view.features(data, positions)
    words = f"out-of-fold probabilities of candidate '{name}' ({record['folds']} folds)"
    return Inputs(
        data, view, positions, oof["target"], oof["probs"], record["class_names"], features, words
    )


def stored_features(folder: Path, paths: np.ndarray) -> np.ndarray | None:
    """Embeddings of every pool item the comparison kept: a backbone's (``features/``), else
    the first deep candidate's first fold model's (one space for every item)."""
    for file in sorted((folder / "features").glob("*.npz")):
        stored = np.load(file)
        if np.array_equal(stored["paths"], paths):
            return stored["features"]
    for file in sorted((folder / "candidates").glob("*/fold0/embeddings.npz")):
        features = np.load(file)["features"]
        if len(features) == len(paths):
            return features
    return None


def from_run(run_dir: Path) -> Inputs:
    from mlcycle.evaluators import predict_split
    from mlcycle.run.loader import Run

    run = Run(run_dir)
    model, data = run.load_model("best"), run.load_data()
    parts: list[dict[str, Any]] = []
    predict_split(model, data, "val", parts.append)
    if not parts or "probs" not in parts[0]:
        raise UserError(
            f"run '{run_dir}' predicts no class probabilities; label issues need a classifier"
        )
    probs, target, index = (
        np.concatenate([p[k].float().numpy() for p in parts]) for k in ("probs", "target", "index")
    )
    target = target.astype(np.int64)
    view = view_of(data)
    positions = index.astype(np.int64).tolist()
    features = view.features(data, positions, model)
    words = f"val probabilities of run '{run_dir}' (its best checkpoint)"
    return Inputs(data, view, positions, target, probs, list(data.class_names), features, words)
