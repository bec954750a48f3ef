"""Who goes into an ensemble of image classifiers: trained runs (``--runs``) or a
comparison's shortlist (``--shortlist``), checked to take the same input and predict the same
classes.

A member is a bag of networks: one run, or the fold models of a cross-validated candidate.
From a shortlist, members that cannot share the ensemble's ONNX graph are left out with a
reason (classic scikit-learn models; deep ones trained at another image size or channel count).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlcycle.core.errors import UserError
from mlcycle.core.objective import Objective, parse_objective
from mlcycle.export.metadata import input_spec
from mlcycle.images.selection.ensemble_task import EnsembleTask
from mlcycle.run.loader import Run, sha256
from mlcycle.selection.ensemble.members import (
    locate,
    member_runs,
    read_shortlist,
    split_rows,
    unique_name,
)
from mlcycle.tasks.classification import ClassificationTask


@dataclass
class Network:
    """One trained network of a member, loaded from its run directory."""

    run: Run
    task: Any  # a ClassificationTask, in eval mode

    @property
    def info(self) -> dict[str, Any]:
        return self.run.data_info

    def input_key(self) -> tuple[int, tuple[int, ...]]:
        return int(self.info["channels"]), tuple(int(v) for v in self.info["image_size"])

    def hparams(self) -> dict[str, Any]:
        hp = self.task.hparams
        return {
            "arch": str(hp.arch),
            "arch_options": copy.deepcopy(hp.get("arch_options")),
            "mean": [float(v) for v in self.info["mean"]],
            "std": [float(v) for v in self.info["std"]],
            "run": str(self.run.path),
        }

    def record(self) -> dict[str, Any]:
        checkpoint = self.run.checkpoint("best")
        return {
            "run": str(self.run.path),
            "arch": str(self.task.hparams.arch),
            "checkpoint": str(checkpoint),
            "sha256": sha256(checkpoint),
        }


@dataclass
class Member:
    name: str
    networks: list[Network]
    oof: Path | None = None  # shortlist: the candidate's out-of-fold probabilities

    def hparams(self) -> dict[str, Any]:
        return {"name": self.name, "networks": [n.hparams() for n in self.networks]}


@dataclass
class Source:
    """The members, and the run whose data (config, split, data.json) the ensemble takes."""

    kind: str  # "runs" or "shortlist"
    members: list[Member]
    data_run: Run
    split_file: Path
    objective: Objective | None
    left_out: list[dict[str, str]] = field(default_factory=list)
    comparison: Path | None = None
    oof: dict[str, np.ndarray] | None = None  # shortlist: probs (M, N, C), target, folds

    @property
    def class_names(self) -> list[str]:
        return [str(c) for c in self.data_run.data_info["class_names"]]


def load_network(path: str | Path) -> Network:
    """A trained classification run, refused in one line when it cannot be a member."""
    run = Run(path)
    input_spec(run.data_info)  # the preprocessing must be recorded
    task = run.load_model("best")
    if isinstance(task, EnsembleTask) or not isinstance(task, ClassificationTask):
        raise UserError(
            f"run '{run.path}' holds a {type(task).__name__}; ensemble members are "
            "classification runs trained by train.py"
        )
    return Network(run=run, task=task.eval())


def check_same_classes(first: Network, other: Network) -> None:
    mine, theirs = first.info["class_names"], other.info["class_names"]
    if list(mine) != list(theirs):
        raise UserError(
            f"run '{other.run.path}' predicts classes {list(theirs)}, run '{first.run.path}' "
            f"{list(mine)}; ensemble members need the same class names in the same order"
        )


def input_mismatch(first: Network, other: Network) -> str | None:
    """Why ``other`` cannot take ``first``'s input, or None."""
    (c1, s1), (c2, s2) = first.input_key(), other.input_key()
    if c1 != c2:
        return f"{c2} channel(s), the ensemble's input has {c1}"
    if s1 != s2:
        return f"image size {'x'.join(map(str, s2))}, the ensemble's is {'x'.join(map(str, s1))}"
    return None


# --- --runs ---------------------------------------------------------------------------------


def from_runs(paths: list[str]) -> Source:
    """Runs trained on the same data and split: same classes, input and ``splits.csv``."""
    resolved = [Path(p).resolve() for p in paths]
    if len(paths) < 2:
        raise UserError("--runs needs at least two run directories to ensemble")
    twice = next((p for i, p in enumerate(paths) if resolved[i] in resolved[:i]), None)
    if twice is not None:
        raise UserError(f"run '{twice}' is given twice in --runs")
    networks = [load_network(p) for p in paths]
    first, split = networks[0], split_rows(networks[0].run)
    for other in networks[1:]:
        check_same_classes(first, other)
        why = input_mismatch(first, other)
        if why:
            raise UserError(f"run '{other.run.path}' was trained on {why}; members take one input")
        if split_rows(other.run) != split:
            raise UserError(
                f"run '{other.run.path}' was trained on another split than '{first.run.path}' "
                "(their splits.csv differ); members must share the split whose val the "
                "combination is fit on"
            )
    taken: set[str] = set()
    members = [Member(unique_name(n.run.path, taken), [n]) for n in networks]
    objective = parse_objective(first.run.config.get("objective"))
    return Source("runs", members, first.run, first.run.path / "splits.csv", objective)


# --- --shortlist ----------------------------------------------------------------------------


def deep_member(entry: dict[str, Any], folder: Path) -> Member:
    name = str(entry["name"])
    paths = member_runs(entry, folder)
    if not paths:
        raise UserError(f"shortlist member '{name}' lists no fold runs")
    home = folder / "candidates" / name
    oof = locate(str(entry.get("oof", "")), home / "oof.npz")
    if not oof.is_file():
        raise UserError(f"shortlist member '{name}' has no out-of-fold predictions ('{oof}')")
    return Member(name, [load_network(p) for p in paths], oof)


def keep_compatible(members: list[Member], left_out: list[dict[str, str]]) -> list[Member]:
    """The members that take the first member's input; the others are left out."""
    first = members[0].networks[0]
    kept = []
    for member in members:
        for network in member.networks:
            check_same_classes(first, network)
        why = next((w for n in member.networks if (w := input_mismatch(first, n))), None)
        if why:
            left_out.append({"name": member.name, "reason": f"trained on {why}"})
        else:
            kept.append(member)
    return kept


def load_oof(members: list[Member], class_names: list[str]) -> dict[str, np.ndarray]:
    """The members' out-of-fold probabilities, checked to cover the same images in one order."""
    loaded = [np.load(m.oof) for m in members]
    first = loaded[0]
    for member, oof in zip(members, loaded, strict=True):
        same = all(np.array_equal(oof[k], first[k]) for k in ("paths", "target", "folds"))
        if not same:
            raise UserError(
                f"out-of-fold predictions of '{member.name}' cover other images or folds than "
                f"'{members[0].name}'; are they from the same comparison?"
            )
        if oof["probs"].shape[1] != len(class_names):
            raise UserError(f"out-of-fold predictions of '{member.name}' have other classes")
    return {
        "probs": np.stack([oof["probs"] for oof in loaded]).astype(np.float32),
        "target": first["target"].astype(np.int64),
        "folds": first["folds"].astype(np.int64),
    }


def from_shortlist(path: str | Path) -> Source:
    """A comparison's shortlist: each deep member is the bag of its fold models."""
    path = Path(path)
    document = read_shortlist(path)
    folder = path.parent
    record_file = folder / "comparison.json"
    record = json.loads(record_file.read_text()) if record_file.is_file() else {}
    left_out: list[dict[str, str]] = []
    members = []
    for entry in document["members"]:
        if entry.get("family") == "deep":
            members.append(deep_member(entry, folder))
        else:
            reason = "classic (scikit-learn) model: it cannot go into the ONNX graph"
            left_out.append({"name": str(entry.get("name")), "reason": reason})
    if not members:
        raise UserError(f"shortlist '{path}' has no deep member; only those go into the graph")
    members = keep_compatible(members, left_out)
    data_run = members[0].networks[0].run
    split_file = folder / "folds" / "fold0.csv"
    if not split_file.is_file():
        raise UserError(f"'{split_file}' is missing; is '{folder}' a compare.py folder?")
    objective = parse_objective(record.get("objective") or data_run.config.get("objective"))
    class_names = [str(c) for c in data_run.data_info["class_names"]]
    oof = load_oof(members, class_names)
    return Source("shortlist", members, data_run, split_file, objective, left_out, folder, oof)
