"""Who goes into an ensemble of table runs: runs sharing one split (``--runs``) or a table
comparison's shortlist (``--shortlist``, each member the bag of its candidate's fold runs, with
compare.py's out-of-fold predictions), checked to predict the same target."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlcycle.core.errors import UserError
from mlcycle.core.objective import Objective, parse_objective
from mlcycle.run.loader import Run
from mlcycle.selection.ensemble.members import (
    locate,
    member_runs,
    read_shortlist,
    split_rows,
    unique_name,
)

TASK_CLASS = "mlcycle.tables.selection.ensemble_task.TableEnsembleTask"


@dataclass
class Source:
    """The members (name, runs), the split file the ensemble takes, the objective and, from a
    shortlist, the out-of-fold scores (M, N, K) or (M, N), their targets and folds."""

    kind: str  # "runs" or "shortlist"
    members: list[tuple[str, list[Run]]]
    split_file: Path
    objective: Objective | None
    oof: dict[str, np.ndarray] | None = None

    @property
    def first(self) -> Run:
        return self.members[0][1][0]


def check_run(run: Run, first: Run) -> None:
    """A table run of train.py predicting what ``first`` predicts."""
    if run.config.get("model", {}).get("class_path") == TASK_CLASS:
        raise UserError(f"run '{run.path}' is an ensemble; members are runs of train.py")
    for key in ("task", "target", "class_names"):
        if run.data_info.get(key) != first.data_info.get(key):
            raise UserError(
                f"run '{run.path}' has {key} {run.data_info.get(key)!r}, run '{first.path}' "
                f"{first.data_info.get(key)!r}; ensemble members predict the same target"
            )


def from_runs(paths: list[str]) -> Source:
    """Named table runs: same target, task kind, classes and ``splits.csv``."""
    if len(paths) < 2:
        raise UserError("--runs needs at least two run directories to ensemble")
    runs = [Run(p) for p in paths]
    first = runs[0]
    split = split_rows(first)
    taken: set[str] = set()
    for run in runs:
        check_run(run, first)
        if split_rows(run) != split:
            raise UserError(
                f"run '{run.path}' was trained on another split than '{first.path}' (their "
                "splits.csv differ); members must share the split whose val the combination is "
                "fit on"
            )
    members = [(unique_name(run.path, taken), [run]) for run in runs]
    objective = parse_objective(first.config.get("objective"))
    return Source("runs", members, first.path / "splits.csv", objective)


def from_shortlist(path: Path) -> Source:
    """A table comparison's shortlist: each member the bag of its fold runs."""
    document = read_shortlist(path)
    folder = path.parent
    members, oof_files = [], []
    for entry in (e for e in document["members"] if isinstance(e, dict)):
        name = str(entry.get("name"))
        runs = [Run(p) for p in member_runs(entry, folder)]
        if not runs:
            raise UserError(f"shortlist member '{name}' lists no fold runs; rerun compare.py")
        home = folder / "candidates" / name / "oof.npz"
        oof = locate(str(entry["oof"]), home) if entry.get("oof") else home
        if not oof.is_file():
            raise UserError(f"shortlist member '{name}' has no out-of-fold predictions ('{oof}')")
        members.append((name, runs))
        oof_files.append(oof)
    if not members:
        raise UserError(f"shortlist '{path}' has no members; rerun compare.py")
    first = members[0][1][0]
    for _, runs in members:
        for run in runs:
            check_run(run, first)
    split_file = folder / "folds" / "fold0.csv"
    if not split_file.is_file():
        raise UserError(f"'{split_file}' is missing; is '{folder}' a compare.py folder?")
    record_file = folder / "comparison.json"
    record = json.loads(record_file.read_text()) if record_file.is_file() else {}
    objective = parse_objective(record.get("objective") or first.config.get("objective"))
    oof = load_oof([n for n, _ in members], oof_files)
    return Source("shortlist", members, split_file, objective, oof)


def load_oof(names: list[str], files: list[Path]) -> dict[str, np.ndarray]:
    """The members' out-of-fold scores, checked to cover the same rows in one order."""
    loaded = [np.load(f) for f in files]
    first = loaded[0]
    for name, oof in zip(names, loaded, strict=True):
        if not all(np.array_equal(oof[k], first[k]) for k in ("paths", "target", "folds")):
            raise UserError(
                f"out-of-fold predictions of '{name}' cover other rows or folds than "
                f"'{names[0]}'; are they from the same comparison?"
            )
    key = "probs" if "probs" in first else "pred"
    return {
        "scores": np.stack([oof[key] for oof in loaded]),
        "target": first["target"],
        "folds": first["folds"].astype(np.int64),
    }
