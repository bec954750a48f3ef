"""``mlcycle learning-curve``'s work: one candidate of a comparison, trained at each size on
each fold, through the comparison's own kind (its pool, fold files and candidate-folds).

Each size is a comparison folder of its own (``size_010/``, ``size_100/``...): its fold files
are the comparison's folds with the training samples a size leaves out marked ``unused``
(:mod:`mlcycle.selection.curve.subsets`), and each candidate-fold is run, resumed or skipped
exactly as compare.py runs it (:func:`mlcycle.selection.compare.run.run_fold`). The training
score of a fold is its model scored on the samples it was fitted on: the run's best
checkpoint through the task's evaluator (``evaluate.py``'s) on the run's ``train`` split, or,
for a model fitted in-process (a classic model on images), a refit on those samples scoring
them.
"""

from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from mlcycle.core.errors import UserError
from mlcycle.core.record import write_json
from mlcycle.selection.compare.budget import Budget
from mlcycle.selection.compare.comparison import Comparison
from mlcycle.selection.compare.run import open_comparison, run_fold
from mlcycle.selection.compare.spec import Candidate, CompareSpec, add_preset
from mlcycle.selection.curve.sizes import check_sizes
from mlcycle.selection.curve.subsets import pool_at, pool_scoring_training
from mlcycle.selection.runs import quiet_to

TRAIN_SCORES = "curve_train.json"


def size_folder(share: float) -> str:
    """A size's comparison folder: ``size_10`` for 10%, ``size_12_5`` for 12.5%."""
    return "size_" + f"{share * 100:g}".replace(".", "_")


def choose(spec: CompareSpec, name: str | None) -> Candidate:
    """The candidate named ``name`` (the only one when None); an unknown name is one line with
    the closest names."""
    names = [c.name for c in spec.candidates]
    if name is None:
        if len(names) == 1:
            return spec.candidates[0]
        raise UserError(f"{spec.path} has {len(names)} candidates; name one: --candidate NAME "
                        f"({', '.join(names)})")  # fmt: skip
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.3)
        hint = f"closest: {', '.join(close)}" if close else f"candidates: {', '.join(names)}"
        raise UserError(f"--candidate '{name}': no such candidate in {spec.path}; {hint}")
    candidate = spec.candidates[names.index(name)]
    if candidate.embeddings_of:
        raise UserError(
            f"--candidate '{name}' learns on another candidate's embeddings "
            f"('{candidate.features}'); a learning curve takes a candidate that learns alone"
        )
    return candidate


def open_curve(
    spec: CompareSpec, name: str | None, out: Path, extra: list[str]
) -> tuple[Comparison, Candidate]:
    """The comparison of the spec's base config (its kind's) and the chosen candidate."""
    if name is not None and not spec.preset:
        choose(spec, name)  # an unknown name fails before the data is read
    comparison = open_comparison(spec, out, extra)
    add_preset(spec, comparison.presets, comparison.unit)
    return comparison, choose(spec, name)


def training_scores(comparison: Comparison, candidate: Candidate, fold: int) -> dict[str, Any]:
    """The fold model's scores on the samples it was fitted on (kept beside the fold)."""
    folder = comparison.fold_dir(candidate, fold)
    saved = folder / TRAIN_SCORES
    if saved.is_file():
        return json.loads(saved.read_text())
    if comparison.trains_runs(candidate):
        scores = run_training_scores(folder, comparison.split_files[fold])
    else:
        scores = refit_training_scores(comparison, candidate, fold)
    scores = {k: v for k, v in scores.items() if isinstance(v, int | float)}
    write_json(saved, scores)
    return scores


def run_training_scores(run_dir: Path, split_file: Path) -> dict[str, Any]:
    """A fold run's best checkpoint scored on its train split by the task's evaluator; the data
    read through the fold file it trained on (it lists the samples a size leaves unused)."""
    from mlcycle.evaluators import evaluator_for
    from mlcycle.run.loader import Run

    run = Run(run_dir)
    model = run.load_model("best")
    data = run.load_data(num_workers=0, split_file=str(split_file))
    figures = run_dir / "curve_train"
    figures.mkdir(exist_ok=True)
    with quiet_to(run_dir / "curve_train.log"):
        return evaluator_for(model)(model, data, "train", figures)["metrics"]


def refit_training_scores(
    comparison: Comparison, candidate: Candidate, fold: int
) -> dict[str, Any]:
    """A model fitted in-process, fitted again on the fold's training samples and scored on
    them (no run directory holds it)."""
    pool = comparison.pool
    comparison.pool = pool_scoring_training(pool, fold)
    try:
        result = comparison.run_fold(candidate, fold, False)
    finally:
        comparison.pool = pool
    key = comparison.predictions
    if key is None:
        return dict(result.get("val_scores") or {})
    return comparison.score_fold(result[key], pool.target[result["rows"]])


def run_sizes(
    comparison: Comparison, candidate: Candidate, sizes: list[float], seed: int
) -> list[dict[str, Any]]:
    """One record per size and fold: the training samples, the val and train scores (or the
    fold's error). Progress on stderr: a bar, and a line per size."""
    sizes = check_sizes(sizes)
    spec, base, out = comparison.spec, comparison.pool, comparison.out
    key, _ = comparison.score_key()
    budget = Budget(None, spec.folds)
    records: list[dict[str, Any]] = []
    bar = tqdm(total=len(sizes) * spec.folds, desc="sizes x folds", unit="fit",
               file=sys.stderr, dynamic_ncols=True)  # fmt: skip
    try:
        for share in sizes:
            comparison.pool, counts = pool_at(base, spec.folds, share, seed)
            comparison.out = out / size_folder(share)
            comparison.prepare()
            for fold in range(spec.folds):
                bar.set_postfix_str(f"{share:.0%} fold {fold}")
                record = run_fold(comparison, candidate, fold, set(), budget)
                row = {"size": share, "fold": fold, "n_train": counts[fold], "val": None,
                       "train": None, "error": record.get("error")}  # fmt: skip
                if record["status"] == "finished":
                    row["val"] = record["scores"].get(key)
                    row["train"] = training_scores(comparison, candidate, fold).get(key)
                records.append(row)
                bar.update()
            tqdm.write(size_line(records, share, key, comparison.unit), file=sys.stderr)
    finally:
        bar.close()
        comparison.pool, comparison.out = base, out
    return records


def size_line(records: list[dict[str, Any]], share: float, key: str, unit: str) -> str:
    rows = [r for r in records if r["size"] == share]
    done = [r for r in rows if r["val"] is not None]
    n = round(sum(r["n_train"] for r in rows) / len(rows))
    if not done:
        return f"{share:.0%} ({n} {unit}s): every fold failed: {rows[0]['error']}"
    val = sum(r["val"] for r in done) / len(done)
    trained = [r["train"] for r in done if r["train"] is not None]
    train = f", train {key} {sum(trained) / len(trained):.4f}" if trained else ""
    return f"{share:.0%} ({n} {unit}s): val {key} {val:.4f}{train} ({len(done)} folds)"


def learning_curve(
    spec: CompareSpec,
    name: str | None,
    sizes: list[float],
    out: Path,
    extra: list[str],
    seed: int | None = None,
) -> dict[str, Any]:
    """Train the candidate at each size on each fold, fit the power law, write the four files
    in ``out``; the summary (learning_curve.json's content). ``seed``: of the subsets (default:
    the comparison's fold seed)."""
    from mlcycle.selection.curve.report import summarize, write_outputs

    sizes = check_sizes(sizes)
    comparison, candidate = open_curve(spec, name, out, extra)
    seed = spec.fold_seed if seed is None else seed
    shown = ", ".join(f"{s:.0%}" for s in sizes)
    opening = (
        f"learning curve of '{candidate.name}': {shown} of each fold's training "
        f"{comparison.unit}s (nested, stratified, seed {seed}) x {spec.folds} {comparison.pool.how} "
        f"folds of {len(comparison.pool)} train+val {comparison.unit}s; the test split is never read"
    )
    print(opening)
    records = run_sizes(comparison, candidate, sizes, seed)
    key, mode = comparison.score_key()
    summary = summarize(records, candidate.name, key, mode, seed)
    summary.update(config=str(spec.path), folds=spec.folds, seed=seed)
    files = write_outputs(summary, out, [opening])
    print(summary["line"])
    print(f"learning curve: {', '.join(str(f) for f in files)}")
    return summary
