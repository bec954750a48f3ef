"""The comparison folder and what every candidate-fold needs, for any task.

:class:`Comparison` owns what does not depend on the task or the kind of data: the folder and
its ``comparison.json``, one candidate-fold run and its record, resuming finished ones, and the
out-of-fold files. A task's kind of comparison subclasses it (registered in
:data:`mlcycle.selection.compare.kinds.COMPARISONS` under the task's ``task_name``) and answers
through a few hooks:

* ``build_pool(data, folds, seed, gap)``: the data's train+val samples cut into folds
  (grouped or time-ordered where the data is split so; ``gap``: the YAML's ``fold_gap``)
  (a :class:`~mlcycle.selection.folds.Pool` that writes the fold files);
* ``run_fold(candidate, fold, wants_embeddings)``: one candidate-fold (``fit_s``,
  ``latency_ms``, ``params``, ``size_mb``, and ``rows`` with the predictions, or the run's
  ``val_scores``);
* ``fold_run_args(config)``: what tune.py's fold runs add to train.py's arguments (a table
  booster's early stopping on its own share of the fold's train rows);
* ``predictions`` / ``names`` / ``score_fold``: what a fold keeps of its held-out rows and how
  they are scored; without ``predictions``, each fold run's own val metrics score it;
* ``data_record``, ``opening_line``, ``notes``: the words about the data;
* ``out_of_fold``, ``analyse``, ``html_tables``: the report's analysis of the folds;
* ``baselines(results)``: the dummy baselines' fold scores (the leaderboard's baseline rows).
"""

from __future__ import annotations

import json
import traceback
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mlcycle.core.errors import UserError
from mlcycle.core.imports import import_object
from mlcycle.core.objective import for_monitor
from mlcycle.core.record import Stopwatch, library_versions, write_json
from mlcycle.selection.compare.spec import Candidate, CompareSpec
from mlcycle.selection.compare.start import run_start
from mlcycle.selection.config import build_data
from mlcycle.selection.folds import Pool
from mlcycle.selection.runs import error_line
from mlcycle.selection.scores import objective_of, score_key

FOLD_RESULT = "selection_fold.json"
FOLD_OOF = "oof_fold.npz"


def base_arguments(spec: CompareSpec, extra: list[str]) -> list[str]:
    """train.py arguments every candidate-fold starts from (and the base data's)."""
    args = [a for c in spec.train for a in ("--config", c)] + spec.args + extra
    if spec.objective is not None:  # every fold run records and checks the same gate
        args.append(f"--objective={json.dumps(spec.objective)}")
    return args


class Comparison:
    """A comparison of candidates on the folds of one base config (see the module docstring)."""

    unit: ClassVar[str] = "sample"  # what one pool row is, in console lines
    predictions: str | None = None  # the out-of-fold array a fold keeps ("probs", "pred")
    names: tuple[str, ...] | None = None  # the scores those give; None: the runs' own metrics
    noun: ClassVar[str] = "predictions"  # what the scores are computed from, for messages
    # compare.py --preset: name -> candidate entries (as the YAML writes them), quickest first
    presets: ClassVar[dict[str, list[dict[str, Any]]]] = {}

    def __init__(
        self, spec: CompareSpec, out: Path, extra: list[str], config: dict[str, Any]
    ) -> None:
        self.spec, self.out, self.extra = spec, out, extra
        self.base_args = base_arguments(spec, extra)
        self.config = config
        self.data = build_data(config)
        self.monitor = self.task_monitor(config, self.data)
        self.pool: Pool = self.build_pool(self.data, spec.folds, spec.fold_seed, spec.fold_gap)
        self.objective = for_monitor(objective_of(spec.objective, config), self.monitor[0])
        self.check_objective()  # a bad metric stops here
        self.split_files: list[Path] = []
        self.deadline: float | None = None  # time.monotonic() the command should end by

    # --- what a kind of comparison provides ---------------------------------------------------

    @classmethod
    def task_monitor(cls, config: dict[str, Any], data: Any = None) -> tuple[str, str]:
        """The monitored metric and mode of the config's task (``val/f1``, ``val/iou``)."""
        task = import_object(config["model"]["class_path"], "model class")
        monitor = getattr(task, "monitor", None)  # the Task contract's class attribute
        return (monitor[0], monitor[1]) if monitor else ("val/f1", "max")

    @classmethod
    def build_pool(cls, data: Any, folds: int, seed: int, gap: int = 0) -> Pool:
        """``data``'s train+val samples cut into ``folds`` folds (``gap``: time folds' rows
        left out before each validation block)."""
        raise NotImplementedError

    @classmethod
    def fold_run_args(cls, config: dict[str, Any]) -> list[str]:
        """train.py arguments a fold run of the resolved ``config`` adds (tune.py's folds), so
        that nothing in the fit sees the fold's scored rows, as ``candidate_args`` does."""
        return []

    @classmethod
    def candidate_args(cls, candidate: Candidate) -> list[str] | None:
        """The train.py arguments of a candidate whose folds are train.py runs, after the
        comparison's own; None for one fitted here (a classic model on images)."""
        if candidate.kind != "deep":
            return None
        return [a for c in candidate.configs for a in ("--config", c)] + candidate.args

    def trains_runs(self, candidate: Candidate) -> bool:
        """Whether the candidate's folds are run directories (ensemble.py takes them)."""
        return candidate.kind == "deep"

    def check_objective(self) -> None:
        self.score_key()

    def data_record(self) -> dict[str, Any]:
        """comparison.json's words about the pool and the sealed test split."""
        raise NotImplementedError

    def opening_line(self, candidates: list[Candidate]) -> str:
        raise NotImplementedError

    def run_fold(self, candidate: Candidate, fold: int, wants_embeddings: bool) -> dict[str, Any]:
        """Fit one candidate on the other folds and measure it on fold ``fold``."""
        raise NotImplementedError

    def score_fold(self, values: np.ndarray, target: np.ndarray) -> dict[str, Any]:
        """The scores of a fold's ``predictions`` against the pool's ``target`` of its rows."""
        raise NotImplementedError

    def per_class_f1(self, records: list[dict[str, Any]]) -> dict[str, float]:
        """Per class, the mean F1 over the folds (the gate's per-class minimum); empty when the
        folds are scored by their runs."""
        return {}

    def out_of_fold(self, records: list[dict[str, Any]]) -> np.ndarray | None:
        """A candidate's prediction for every pool row, each from the fold model that did not
        train on it; None unless every fold finished (or nothing is predicted)."""
        return None

    def analyse(
        self, rows: list[dict[str, Any]], oof: dict[str, np.ndarray], mode: str, figures: Path
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The report's analysis of the out-of-fold predictions (figures into ``figures``) and
        the shortlist it wrote; nothing when the folds are scored by their runs."""
        return {}, None

    def notes(self, clock_s: float, fold_s: float) -> list[str]:
        """The report's words about the data, the metric, the latency and the time taken."""
        raise NotImplementedError

    def baselines(self, results: dict[str, list[dict]]) -> dict[str, list[dict[str, Any]]]:
        """Per dummy baseline, its scores on every fold (the leaderboard's ``kind: baseline``
        rows); by default :func:`~mlcycle.selection.compare.baselines.fold_baselines`."""
        from mlcycle.selection.compare.baselines import fold_baselines

        return fold_baselines(self, results)

    def html_tables(self, found: dict[str, Any]) -> list[tuple[str, list[str], list[list[Any]]]]:
        """Tables of the analysis for the HTML page: (caption, columns, rows)."""
        pairs = found.get("confused_pairs") or []
        if not pairs:
            return []
        values = [[p["true"], p["predicted"], p["count"]] for p in pairs]
        caption = "Most confused class pairs (out of fold, all models)"
        return [(caption, ["true", "predicted", "count"], values)]

    # --- what every comparison does the same way ---------------------------------------------

    def score_key(self) -> tuple[str, str]:
        """The fold score the leaderboard ranks by, and its mode (``max`` or ``min``)."""
        return score_key(self.objective, self.monitor, self.names, self.noun)

    def fold_dir(self, candidate: Candidate, fold: int) -> Path:
        return self.out / "candidates" / candidate.name / f"fold{fold}"

    def prepare(self) -> None:
        """Write the folds, or check that a resumed comparison has the same ones."""
        self.out.mkdir(parents=True, exist_ok=True)
        record_file = self.out / "comparison.json"
        if record_file.is_file():
            old = json.loads(record_file.read_text())
            if old.get("fold_digest") != self.pool.digest:
                raise UserError(
                    f"'{self.out}' holds a comparison on other folds (the data, --folds or the "
                    "fold seed changed); choose another --out"
                )
        self.split_files = self.pool.write(self.out, self.spec.folds)
        write_json(
            record_file,
            {
                "config": str(self.spec.path),
                "train_args": self.base_args,
                "folds": self.spec.folds,
                "fold_seed": self.spec.fold_seed,
                "fold_rule": self.pool.how,
                "fold_digest": self.pool.digest,
                **self.data_record(),
                "class_names": self.pool.class_names,
                "data_fingerprint": self.data.fingerprint,
                "objective": self.objective.__dict__ if self.objective else None,
                "candidates": [c.__dict__ for c in self.spec.candidates],
                "versions": library_versions(),
            },
        )

    def fold_done(self, candidate: Candidate, fold: int) -> bool:
        folder = self.fold_dir(candidate, fold)
        result = folder / FOLD_RESULT
        if not result.is_file() or (self.predictions and not (folder / FOLD_OOF).is_file()):
            return False
        return json.loads(result.read_text()).get("status") == "finished"

    def run_one(self, candidate: Candidate, fold: int, wants_embeddings: bool) -> dict[str, Any]:
        folder = self.fold_dir(candidate, fold)
        folder.mkdir(parents=True, exist_ok=True)
        clock = Stopwatch()
        try:
            result = self.run_fold(candidate, fold, wants_embeddings)
        except Exception as exc:  # one candidate's failure must not stop the others
            record = {"status": "failed", "fold": fold, "error": error_line(exc)}
            (folder / "error.txt").write_text("".join(traceback.format_exception(exc)))
            write_json(folder / FOLD_RESULT, record)
            return record
        scores = self.fold_outputs(folder, result)
        record = {
            "status": "finished",
            "fold": fold,
            "candidate": candidate.name,
            "family": candidate.kind,
            **{k: result[k] for k in ("fit_s", "latency_ms", "params", "size_mb")},
            "start": self.start_of(candidate, fold, result),
            "wall_s": clock.seconds,
            "scores": scores,
        }
        write_json(folder / FOLD_RESULT, record)
        return record

    def start_of(self, candidate: Candidate, fold: int, result: dict[str, Any]) -> str:
        """Where the candidate-fold started: its run's resolved config.yaml says it (scratch,
        the weights, ``init_from:<run>``); a fold fitted here says it in ``result["start"]``."""
        if self.trains_runs(candidate):
            return run_start(self.fold_dir(candidate, fold))
        return str(result.get("start") or "")

    def fold_outputs(self, folder: Path, result: dict[str, Any]) -> dict[str, Any]:
        """Save the fold's out-of-fold predictions; return its scores."""
        key = self.predictions
        if key is None:
            return result["val_scores"]  # the run's best epoch, as its metrics.json has it
        np.savez_compressed(folder / FOLD_OOF, rows=result["rows"], **{key: result[key]})
        return self.score_fold(result[key], self.pool.target[result["rows"]])

    def load_fold(self, candidate: Candidate, fold: int) -> dict[str, Any]:
        folder = self.fold_dir(candidate, fold)
        record = json.loads((folder / FOLD_RESULT).read_text())
        key = self.predictions
        if record.get("status") == "finished" and key is not None:
            oof = np.load(folder / FOLD_OOF)
            record["rows"], record[key] = oof["rows"], oof[key]
        return record
