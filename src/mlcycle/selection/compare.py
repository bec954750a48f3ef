"""``scripts/compare.py``: many quick models, the same folds, one leaderboard.

Every candidate is cross-validated on stratified folds of the base data's train+val images;
the test split is sealed (never predicted, never scored). Deep candidates are normal train.py
runs under ``<out>/candidates/<name>/fold<k>`` (evaluate.py and export.py work on any of them);
classic ones are scikit-learn estimators on resized pixels or on a deep candidate's embeddings.
On a table (``mlcycle.tables.TabularData``) every candidate-fold, classic ones included, is a
train.py run (:mod:`mlcycle.selection.tables_compare`). A finished candidate-fold is kept:
re-running the same command resumes.
"""

from __future__ import annotations

import json
import shlex
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from mlcycle.commands.guard import ArgParser, main_guard
from mlcycle.core.errors import UserError, user_error_in
from mlcycle.core.objective import for_monitor
from mlcycle.core.record import Stopwatch, library_versions, write_json
from mlcycle.selection import classic, deep
from mlcycle.selection.pool import Pool, build_data, build_pool, resolve_config, write_folds
from mlcycle.selection.scores import fold_scores, objective_of, score_key, summarize, task_monitor
from mlcycle.selection.spec import Candidate, CompareSpec, load_spec

FOLD_RESULT = "selection_fold.json"
FOLD_OOF = "oof_fold.npz"


def build_parser() -> ArgParser:
    parser = ArgParser(
        prog="compare.py",
        description="Cross-validate many candidate models on the same folds and rank them. "
        "Any other --key=value (e.g. --data.root PATH, --trainer.max_epochs=2) goes to every "
        "train.py run and to the base data.",
    )
    parser.add_argument("--config", required=True, help="comparison YAML (configs/compare/*.yaml)")
    parser.add_argument("--out", help="comparison folder (default: runs/compare/<config name>)")
    parser.add_argument("--folds", type=int, help="number of folds (default: the config's, 5)")
    parser.add_argument("--only", help="comma-separated candidate names to run (others skipped)")
    return parser


def error_line(exc: BaseException) -> str:
    """One line for the leaderboard: the user-fixable cause when there is one."""
    cause = user_error_in(exc) or exc
    text = " ".join(str(cause).split()) or type(cause).__name__
    return text if isinstance(cause, UserError) else f"{type(cause).__name__}: {text}"


class Comparison:
    """The comparison folder and what every candidate-fold needs."""

    def __init__(
        self, spec: CompareSpec, out: Path, extra: list[str], config: dict | None = None
    ) -> None:
        self.spec, self.out, self.extra = spec, out, extra
        self.base_args = base_arguments(spec, extra)
        config = config if config is not None else resolve_config(self.base_args)
        self.config = config
        self.data = build_data(config)
        self.monitor = task_monitor(config, self.data)
        self.pool: Pool = build_pool(self.data, spec.folds, spec.fold_seed)
        self.objective = for_monitor(objective_of(spec.objective, config), self.monitor[0])
        score_key(self.objective, self.monitor, self.pool.classify)  # a bad metric stops here
        self.rows = {path: i for i, path in enumerate(self.pool.paths)}
        self._pixels: np.ndarray | None = None
        self._images: dict[int, np.ndarray] = {}

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
        self.split_files = write_folds(self.pool, self.out, self.spec.folds)
        write_json(
            record_file,
            {
                "config": str(self.spec.path),
                "train_args": self.base_args,
                "folds": self.spec.folds,
                "fold_seed": self.spec.fold_seed,
                "fold_digest": self.pool.digest,
                **self.data_record(),
                "class_names": self.pool.class_names,
                "data_fingerprint": self.data.fingerprint,
                "objective": self.objective.__dict__ if self.objective else None,
                "candidates": [c.__dict__ for c in self.spec.candidates],
                "versions": library_versions(),
            },
        )

    def data_record(self) -> dict[str, Any]:
        index = self.data.index
        return {
            "images": len(self.pool),
            "test_images_sealed": len(index.positions["test"]),
            "layout": index.layout,
        }

    def opening_line(self, candidates: list[Candidate]) -> str:
        test = len(self.data.index.positions["test"])
        return (
            f"comparison: {len(candidates)} candidates x {self.spec.folds} folds on "
            f"{len(self.pool)} train+val images; test split sealed ({test} images, never read "
            f"by any candidate); {self.out}"
        )

    def pixels(self) -> np.ndarray:
        if self._pixels is None:
            self._pixels = self.pool.pixels(self.spec.classic_size)
        return self._pixels

    def fold_images(self, fold: int) -> np.ndarray:
        """The fold's images (uint8, at most 256) every family is timed on."""
        if fold not in self._images:
            rows = np.flatnonzero(self.pool.folds == fold)[:256]
            self._images[fold] = np.stack([self.pool.image(r) for r in rows])
        return self._images[fold]

    # --- one candidate-fold -------------------------------------------------------------------

    def run_deep(self, candidate: Candidate, fold: int, wants_embeddings: bool) -> dict[str, Any]:
        run_dir = self.fold_dir(candidate, fold)
        candidate_args = [a for c in candidate.configs for a in ("--config", c)] + candidate.args
        args = deep.train_args(self.base_args, candidate_args, self.split_files[fold], run_dir)
        result = deep.run_fold(args, run_dir, self.rows, classify=self.pool.classify)
        if wants_embeddings:
            features = deep.embed_rows(result["model"], result["data"], self.rows)
            np.savez_compressed(run_dir / "embeddings.npz", features=features)
        return result

    def run_classic(self, candidate: Candidate, fold: int) -> dict[str, Any]:
        if not self.pool.classify:
            raise UserError(
                f"candidate '{candidate.name}': classic candidates need classification data"
            )
        if candidate.args or candidate.configs:
            raise UserError(
                f"candidate '{candidate.name}': 'args' and 'config' of a classic candidate are "
                "for table comparisons; an image one is set by estimator, params, pca, scale"
            )
        train_rows, fold_rows = self.pool.fold_rows(fold)
        source = candidate.embeddings_of
        if source is None:
            features = self.pixels()
            size = self.spec.classic_size

            def to_features(batch: np.ndarray) -> np.ndarray:
                from mlcycle.selection.pool import shrink

                rows = [shrink(image, size) for image in batch]
                return np.stack(rows).reshape(len(rows), -1).astype(np.float32) / 255.0
        else:
            features, to_features = self.embeddings(source, fold)
        return classic.run_fold(
            candidate,
            features,
            self.pool.target,
            train_rows,
            fold_rows,
            len(self.pool.class_names),
            self.spec.fold_seed,
            to_features,
            self.fold_images(fold),
        )

    def embeddings(self, source: str, fold: int):
        from mlcycle.run.loader import Run

        deep_dir = self.out / "candidates" / source / f"fold{fold}"
        path = deep_dir / "embeddings.npz"
        if not path.is_file():
            raise UserError(f"deep candidate '{source}' has no fold {fold} embeddings (it failed)")
        run = Run(deep_dir)
        model = run.load_model("best")
        embed = deep.embedder(model, run.data_info["mean"], run.data_info["std"])
        return np.load(path)["features"], embed

    def fold_done(self, candidate: Candidate, fold: int) -> bool:
        folder = self.fold_dir(candidate, fold)
        result = folder / FOLD_RESULT
        has_oof = self.pool.classify or getattr(self.pool, "table", False)
        if not result.is_file() or (has_oof and not (folder / FOLD_OOF).is_file()):
            return False
        return json.loads(result.read_text()).get("status") == "finished"

    def run_one(self, candidate: Candidate, fold: int, wants_embeddings: bool) -> dict[str, Any]:
        folder = self.fold_dir(candidate, fold)
        folder.mkdir(parents=True, exist_ok=True)
        clock = Stopwatch()
        try:
            if candidate.kind == "deep":
                result = self.run_deep(candidate, fold, wants_embeddings)
            else:
                result = self.run_classic(candidate, fold)
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
            "wall_s": clock.seconds,
            "scores": scores,
        }
        write_json(folder / FOLD_RESULT, record)
        return record

    def fold_outputs(self, folder: Path, result: dict[str, Any]) -> dict[str, Any]:
        """Save the fold's out-of-fold predictions; return its scores."""
        if self.pool.classify:
            np.savez_compressed(folder / FOLD_OOF, rows=result["rows"], probs=result["probs"])
            target = self.pool.target[result["rows"]]
            return fold_scores(result["probs"], target, len(self.pool.class_names))
        return result["val_scores"]  # the run's best epoch, as its metrics.json has it

    def load_fold(self, candidate: Candidate, fold: int) -> dict[str, Any]:
        folder = self.fold_dir(candidate, fold)
        record = json.loads((folder / FOLD_RESULT).read_text())
        if record.get("status") == "finished" and self.pool.classify:
            oof = np.load(folder / FOLD_OOF)
            record["rows"], record["probs"] = oof["rows"], oof["probs"]
        return record


def base_arguments(spec: CompareSpec, extra: list[str]) -> list[str]:
    """train.py arguments every candidate-fold starts from (and the base data's)."""
    args = [a for c in spec.train for a in ("--config", c)] + spec.args + extra
    if spec.objective is not None:  # every fold run records and checks the same gate
        args.append(f"--objective={json.dumps(spec.objective)}")
    return args


def open_comparison(spec: CompareSpec, out: Path, extra: list[str]) -> Comparison:
    """A comparison of images, or (``mlcycle.tables.TabularData``) of a table's rows."""
    from mlcycle.selection.tables_compare import TableComparison, is_table_config

    config = resolve_config(base_arguments(spec, extra))
    cls = TableComparison if is_table_config(config) else Comparison
    return cls(spec, out, extra, config)


def order(candidates: list[Candidate]) -> list[Candidate]:
    """Deep candidates first: classic ones may use their embeddings."""
    return [c for c in candidates if c.kind == "deep"] + [c for c in candidates if c.kind != "deep"]


def run_all(comparison: Comparison, candidates: list[Candidate]) -> dict[str, list[dict]]:
    spec = comparison.spec
    embedded = {c.embeddings_of for c in spec.candidates if c.embeddings_of}
    tasks = [(c, f) for c in order(candidates) for f in range(spec.folds)]
    results: dict[str, list[dict]] = {c.name: [] for c in candidates}
    bar = tqdm(tasks, desc="candidates x folds", unit="fit", file=sys.stderr, dynamic_ncols=True)
    for candidate, fold in bar:
        bar.set_postfix_str(f"{candidate.name} fold {fold}")
        if comparison.fold_done(candidate, fold):
            record = comparison.load_fold(candidate, fold)
        else:
            record = comparison.run_one(candidate, fold, candidate.name in embedded)
            if record["status"] == "finished":
                record = comparison.load_fold(candidate, fold)
        results[candidate.name].append(record)
        if record["status"] != "finished":
            tqdm.write(f"{candidate.name} fold {fold} failed: {record['error']}", file=sys.stderr)
        if fold == spec.folds - 1:
            row = summarize(candidate, results[candidate.name], comparison)
            tqdm.write(row["line"], file=sys.stderr)
    bar.close()
    return results


def pick(spec: CompareSpec, only: str | None) -> list[Candidate]:
    if not only:
        return spec.candidates
    names = [n.strip() for n in only.split(",") if n.strip()]
    known = {c.name for c in spec.candidates}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UserError(
            f"--only: no candidate '{unknown[0]}' in {spec.path}; candidates: {', '.join(sorted(known))}"
        )
    return [c for c in spec.candidates if c.name in names]


@main_guard
def main(argv: list[str] | None = None) -> dict[str, Any]:
    from mlcycle.selection.report import write_report

    args, extra = build_parser().parse_known_args(argv)
    bad = [a for a in extra if a.startswith("-") and not a.startswith("--")]
    if bad:
        raise UserError(f"unknown option '{bad[0]}' (see compare.py --help)")
    spec = load_spec(args.config)
    if args.folds is not None:
        spec.folds = args.folds
    if spec.folds < 2:
        raise UserError(f"--folds {spec.folds}: cross-validation needs at least 2 folds")
    out = Path(args.out) if args.out else Path("runs") / "compare" / spec.path.stem
    clock = Stopwatch()
    comparison = open_comparison(spec, out, extra)
    comparison.prepare()
    candidates = pick(spec, args.only)
    print(comparison.opening_line(candidates))
    results = run_all(comparison, candidates)
    command = shlex.join(["compare.py", *(sys.argv[1:] if argv is None else argv)])
    report = write_report(comparison, candidates, results, command, clock)
    return report
