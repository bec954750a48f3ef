"""``scripts/ensemble.py``: combine trained models into one run directory.

    python scripts/ensemble.py --runs RUN_A RUN_B [RUN_C ...] [--method soft|weighted|stacking|all]
    python scripts/ensemble.py --shortlist runs/compare/digits/shortlist.yaml --method all

The result is an ordinary run directory (``config.yaml``, ``checkpoints/best.ckpt``,
``metrics.json``, ``data.json``, ``splits.csv``) plus ``ensemble.json``: evaluate.py scores it,
export.py writes it as one ONNX graph and predict.py runs it, all unchanged. The combination is
fit on held-out predictions only: the members' val predictions (``--runs``) or the comparison's
out-of-fold ones (``--shortlist``); the test split is never predicted here. See docs/ensemble.md.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from mlcycle.commands.guard import ArgParser, main_guard
from mlcycle.core.errors import UserError
from mlcycle.core.objective import train_gate
from mlcycle.core.record import Stopwatch, default_run_dir, library_versions, write_json
from mlcycle.selection import combine
from mlcycle.selection.ensemble_members import Source, from_runs, from_shortlist
from mlcycle.selection.ensemble_task import EnsembleTask
from mlcycle.selection.scores import fold_scores, score_key

TASK_CLASS = f"{EnsembleTask.__module__}.{EnsembleTask.__name__}"
RUN_FILES = ("data.json", "data_manifest.csv", "skipped_files.csv")


def build_parser() -> ArgParser:
    parser = ArgParser(
        prog="ensemble.py",
        description="Combine trained classification runs (or a comparison's shortlist) into one "
        "run directory that evaluate.py, export.py and predict.py use like any other.",
    )
    given = parser.add_mutually_exclusive_group(required=True)
    given.add_argument(
        "--runs", nargs="+", help="run directories trained on the same split (image or table runs)"
    )
    given.add_argument("--shortlist", help="shortlist.yaml written by compare.py")
    parser.add_argument(
        "--method",
        choices=(*combine.METHODS, "all"),
        default="soft",
        help="soft voting (default), weighted (log-loss weights), stacking (logistic "
        "regression), or all: the best of the three on held-out predictions",
    )
    parser.add_argument("--out", help="the ensemble's run directory (default runs/ensemble/<time>)")
    return parser


@dataclass
class Outcome:
    """One method: its combination fit on every row, and its scores."""

    method: str
    combination: combine.Combination
    scores: dict[str, Any]  # honest: cross-fitted when the method fits anything
    in_sample: dict[str, Any]  # the final combination on the rows it was fit on
    cross_fitted: bool


@dataclass
class Fitted:
    """The held-out predictions the combination was fit on, and every method's outcome."""

    probs: np.ndarray  # (M, N, C)
    target: np.ndarray
    folds: np.ndarray
    outcomes: list[Outcome]
    chosen: Outcome
    singles: list[dict[str, Any]]  # each member's scores on the same predictions
    best: int  # the best single member


def build_task(source: Source) -> EnsembleTask:
    """The ensemble with soft voting and every member network's trained weights."""
    info = source.data_run.data_info
    task = EnsembleTask(
        members=[m.hparams() for m in source.members],
        combination=combine.soft(len(source.members)).to_dict(),
        mean=[float(v) for v in info["mean"]],
        std=[float(v) for v in info["std"]],
        num_classes=len(source.class_names),
        in_channels=int(info["channels"]),
        class_names=source.class_names,
    )
    for bag, member in zip(task.model.bags, source.members, strict=True):
        for net, network in zip(bag.networks, member.networks, strict=True):
            net.load_state_dict(network.task.model.state_dict())
    return task.eval()


def val_predictions(task: EnsembleTask, data: Any) -> tuple[np.ndarray, np.ndarray]:
    """Every member's probabilities on the val split, (M, N, C), and the targets."""
    probs, target = [], []
    with torch.no_grad():
        for x, y, _ in data.split_dataloader("val"):
            probs.append(task.model.member_probs(x.float()).numpy())
            target.append(y.numpy())
    return np.concatenate(probs, axis=1), np.concatenate(target).astype(np.int64)


def score_methods(
    methods: list[str], probs: np.ndarray, target: np.ndarray, folds: np.ndarray, classes: int
) -> list[Outcome]:
    outcomes = []
    for method in methods:
        combination = combine.fit(method, probs, target, classes)
        in_sample = fold_scores(combine.apply(combination, probs), target, classes)
        fitted = method != "soft"
        honest = (
            fold_scores(
                combine.cross_fitted(method, probs, target, folds, classes), target, classes
            )
            if fitted
            else in_sample
        )
        outcomes.append(Outcome(method, combination, honest, in_sample, fitted))
    return outcomes


def choose(outcomes: list[Outcome], objective: Any) -> Outcome:
    """The best honest score of the objective's metric; ties: lower log loss, then the simpler
    method (soft, weighted, stacking)."""
    key, mode = score_key(objective)
    sign = -1 if mode == "max" else 1
    return min(outcomes, key=lambda o: (sign * round(o.scores[key], 9), o.scores["loss"]))


def check_out(given: str | None) -> Path:
    """The output folder; refused when it already holds a run (created only once the ensemble
    is fit, so a failure leaves nothing behind)."""
    out = Path(given) if given else default_run_dir(["ensemble"])
    if (out / "checkpoints" / "best.ckpt").exists():
        raise UserError(f"'{out}' already holds a run; choose another --out")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out '{out}' is a file; choose a folder")
    return out


def create_out(out: Path) -> None:
    try:
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create '{out}': {exc.strerror}; choose another --out") from exc


def plain(value: Any) -> Any:
    """Only JSON types, so ``load_from_checkpoint(weights_only=True)`` reads the hyperparameters."""
    return json.loads(json.dumps(value))


def save_checkpoint(task: EnsembleTask, path: Path) -> None:
    import lightning

    torch.save(
        {
            "state_dict": task.state_dict(),
            "hyper_parameters": plain(dict(task.hparams)),
            "pytorch-lightning_version": lightning.__version__,
            "epoch": 0,
            "global_step": 0,
        },
        path,
    )


def write_config(out: Path, task: EnsembleTask, source: Source) -> None:
    data = plain(source.data_run.config["data"])
    data.setdefault("init_args", {})["split_file"] = str(out / "splits.csv")
    config: dict[str, Any] = {
        "model": {"class_path": TASK_CLASS, "init_args": plain(dict(task.hparams))},
        "data": data,
    }
    if source.objective is not None:
        config["objective"] = source.objective.to_dict()
    (out / "config.yaml").write_text(
        "# an ensemble built by ensemble.py (see ensemble.json); not trained by train.py\n"
        + yaml.safe_dump(config, sort_keys=False)
    )


def copy_data_files(out: Path, source: Source) -> None:
    shutil.copyfile(source.split_file, out / "splits.csv")
    for name in RUN_FILES:
        if (source.data_run.path / name).is_file():
            shutil.copyfile(source.data_run.path / name, out / name)


def scored_on(source: Source, outcome: Outcome, rows: int, folds: int) -> str:
    if source.kind == "shortlist":
        text = (
            f"out-of-fold predictions of comparison '{source.comparison}' ({rows} train+val "
            f"images, {folds} folds: each image predicted by the fold model that did not train "
            "on it)"
        )
        if outcome.cross_fitted:
            text += f"; the {outcome.method} combination cross-fitted over the same folds"
        return text + (
            "; evaluate.py --split val is optimistic on this run (the bag's other fold models "
            "trained on fold 0)"
        )
    text = f"val split ({rows} images) of '{source.split_file}'"
    if outcome.cross_fitted:
        text += (
            f"; the {outcome.method} combination cross-fitted over {folds} folds of val; the "
            "final one is fit on all of val, so evaluate.py --split val scores it in-sample"
        )
    return text


def metrics_record(outcome: Outcome, source: Source, text: str) -> dict[str, Any]:
    scores = outcome.scores
    record: dict[str, Any] = {"status": "finished", "monitor": "val/f1", "best_epoch": None}
    for key in ("f1", "acc", "precision", "recall", "loss", "error"):
        record[f"val/{key}"] = scores[key]
    for name, value in zip(source.class_names, scores["f1_per_class"], strict=True):
        record[f"val/f1/{name}"] = value
    record["scored_on"] = text
    record["ensemble"] = {"method": outcome.method, "members": [m.name for m in source.members]}
    return record


def brief(scores: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in scores.items() if k != "f1_per_class"}


def members_record(source: Source, outcome: Outcome, singles: list[dict]) -> list[dict]:
    weights = outcome.combination.weights
    return [
        {
            "name": member.name,
            "family": "deep",
            "networks": [n.record() for n in member.networks],
            "weight": weights[i] if weights else None,
            "scores": brief(singles[i]),
        }
        for i, member in enumerate(source.members)
    ]


def print_table(source: Source, fitted: Fitted) -> None:
    """Every method's held-out macro F1 and log loss under the best single member's."""
    where = "out-of-fold" if source.kind == "shortlist" else "val"
    bags = ", ".join(
        f"{m.name} ({len(m.networks)} fold models)" if len(m.networks) > 1 else m.name
        for m in source.members
    )
    rows, best = len(fitted.target), fitted.best
    print(f"ensemble of {len(source.members)} member(s) on {rows} {where} images: {bags}")
    for item in source.left_out:
        print(f"left out: {item['name']} ({item['reason']})")
    label = f"best single: {source.members[best].name}"
    width = max(len(label), 24)
    single = fitted.singles[best]
    print(f"{'':<{width}}  {'macro F1':>8}  {'log loss':>8}")
    print(f"{label:<{width}}  {single['f1']:8.4f}  {single['loss']:8.4f}")
    for o in fitted.outcomes:
        name = f"{o.method} (cross-fitted)" if o.cross_fitted else o.method
        line = f"{name:<{width}}  {o.scores['f1']:8.4f}  {o.scores['loss']:8.4f}"
        if o.method == "weighted":
            names = [m.name for m in source.members]
            pairs = zip(names, o.combination.weights or [], strict=True)
            line += "  weights " + ", ".join(f"{n} {w:.3f}" for n, w in pairs)
        print(line)


def fit_methods(source: Source, task: EnsembleTask, data: Any, asked: str) -> Fitted:
    """Fit and score the asked method(s) on held-out predictions: the members' val predictions
    (``--runs``) or the comparison's out-of-fold ones (``--shortlist``)."""
    classes = len(source.class_names)
    if source.oof is not None:
        probs, target, folds = source.oof["probs"], source.oof["target"], source.oof["folds"]
    else:
        probs, target = val_predictions(task, data)
        folds = combine.stratified_folds(target)
    methods = list(combine.METHODS) if asked == "all" else [asked]
    outcomes = score_methods(methods, probs, target, folds, classes)
    chosen = choose(outcomes, source.objective)
    singles = [fold_scores(p, target, classes) for p in probs]
    key, mode = score_key(source.objective)
    pick = max if mode == "max" else min
    best = pick(range(len(singles)), key=lambda i: singles[i][key])
    return Fitted(probs, target, folds, outcomes, chosen, singles, best)


def measure(task: EnsembleTask, data: Any) -> dict[str, Any]:
    """Latency (CPU, uint8 val images to probabilities, as compare.py measures), parameters
    and size of the saved weights."""
    from mlcycle.selection.measure import latency_ms, torch_predictor, torch_size

    positions = data.index.positions["val"][:256]
    images = np.stack([data.raw_image(p) for p in positions])
    predict = torch_predictor(task, task.hparams.mean, task.hparams.std)
    params, size = torch_size(task.model)
    return {"latency_ms": latency_ms(predict, images), "params": params, "size_mb": size}


def write_metrics(out: Path, source: Source, fitted: Fitted, measured: dict, text: str) -> dict:
    record = metrics_record(fitted.chosen, source, text)
    record.update(measured)
    if source.objective is not None:
        gate = train_gate(
            source.objective,
            record,
            latency_ms=measured["latency_ms"],
            size_mb=measured["size_mb"],
        )
        record.update(objective=source.objective.to_dict(), gate=gate.to_dict())
    record["versions"] = library_versions()
    write_json(out / "metrics.json", record)
    return record


def ensemble_record(source: Source, fitted: Fitted, asked: str, text: str) -> dict[str, Any]:
    chosen, best = fitted.chosen, fitted.best
    return {
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": source.kind,
        "comparison": str(source.comparison) if source.comparison else None,
        "method": chosen.method,
        "method_asked": asked,
        "combination": chosen.combination.to_dict(),
        "scored_on": text,
        "images": len(fitted.target),
        "members": members_record(source, chosen, fitted.singles),
        "left_out": source.left_out,
        "best_single": {"name": source.members[best].name, "scores": brief(fitted.singles[best])},
        "methods": {
            o.method: {
                "combination": o.combination.to_dict(),
                "scores": brief(o.scores),
                "cross_fitted": o.cross_fitted,
                "scores_in_sample": brief(o.in_sample),
            }
            for o in fitted.outcomes
        },
    }


@main_guard
def main(argv: list[str] | None = None) -> Path:
    args = build_parser().parse_args(argv)
    from mlcycle.selection import ensemble_tables

    if args.shortlist:
        ensemble_tables.refuse_table_shortlist(args.shortlist)
    elif ensemble_tables.given_tables(args.runs):  # each member keeps its own pipeline
        return ensemble_tables.main_tables(args.runs, args.method, args.out, argv)
    clock = Stopwatch()
    source = from_shortlist(args.shortlist) if args.shortlist else from_runs(args.runs)
    key, _ = score_key(source.objective)  # refuses a metric predictions cannot give, early
    out = check_out(args.out)
    task = build_task(source)
    data = source.data_run.load_data(num_workers=0)
    fitted = fit_methods(source, task, data, args.method)
    task.set_combination(fitted.chosen.combination.to_dict())
    print_table(source, fitted)
    if args.method == "all":
        print(f"method: {fitted.chosen.method} (the best held-out val/{key} of the three)")

    create_out(out)
    copy_data_files(out, source)
    write_config(out, task, source)
    save_checkpoint(task, out / "checkpoints" / "best.ckpt")
    text = scored_on(source, fitted.chosen, len(fitted.target), len(np.unique(fitted.folds)))
    measured = measure(task, data)
    record = write_metrics(out, source, fitted, measured, text)
    command = shlex.join(["ensemble.py", *(sys.argv[1:] if argv is None else argv)])
    document = ensemble_record(source, fitted, args.method, text)
    write_json(
        out / "ensemble.json",
        {"command": command, **document, **measured, "wall_time_s": clock.seconds},
    )
    if "gate" in record:
        print(record["gate"]["line"])
    print(f"run directory: {out}")
    return out
