"""ensemble.py on image classifiers: their networks and the combination in one
:class:`~mlcycle.images.selection.ensemble_task.EnsembleTask`, an ordinary classification run
directory that evaluate.py, export.py (one ONNX graph) and predict.py use unchanged.

The combination is fit on held-out predictions only: the members' val predictions (``--runs``)
or the comparison's out-of-fold ones (``--shortlist``). Registered for the classification task
in mlcycle's ``pyproject.toml``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mlcycle.core.record import Stopwatch, write_json
from mlcycle.images.selection.ensemble_members import Source, from_runs, from_shortlist
from mlcycle.images.selection.ensemble_record import (
    Fitted,
    ensemble_record,
    print_table,
    scored_on,
    write_metrics,
)
from mlcycle.images.selection.ensemble_task import EnsembleTask
from mlcycle.selection.ensemble import combine
from mlcycle.selection.ensemble.kinds import Request
from mlcycle.selection.ensemble.methods import choose, score_methods
from mlcycle.selection.ensemble.output import check_out, create_out, save_checkpoint, write_config
from mlcycle.selection.measure import latency_ms, torch_predictor, torch_size
from mlcycle.selection.scores import fold_scores, score_key

RUN_FILES = ("data.json", "data_manifest.csv", "skipped_files.csv")


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
    positions = data.index.positions["val"][:256]
    images = np.stack([data.raw_image(p) for p in positions])
    predict = torch_predictor(task, task.hparams.mean, task.hparams.std)
    params, size = torch_size(task.model)
    return {"latency_ms": latency_ms(predict, images), "params": params, "size_mb": size}


def copy_data_files(out: Path, source: Source) -> None:
    shutil.copyfile(source.split_file, out / "splits.csv")
    for name in RUN_FILES:
        if (source.data_run.path / name).is_file():
            shutil.copyfile(source.data_run.path / name, out / name)


def build(request: Request) -> Path:
    """``ensemble.py`` on image classifiers: fit, then write the run directory."""
    clock = Stopwatch()
    source = from_shortlist(request.shortlist) if request.shortlist else from_runs(request.runs)
    key, _ = score_key(source.objective)  # refuses a metric predictions cannot give, early
    out = check_out(request.out)
    task = build_task(source)
    data = source.data_run.load_data(num_workers=0)
    fitted = fit_methods(source, task, data, request.method)
    task.set_combination(fitted.chosen.combination.to_dict())
    print_table(source, fitted)
    if request.method == "all":
        print(f"method: {fitted.chosen.method} (the best held-out val/{key} of the three)")

    create_out(out)
    copy_data_files(out, source)
    write_config(out, task, source.data_run.config["data"], source.objective)
    save_checkpoint(task, out / "checkpoints" / "best.ckpt")
    text = scored_on(source, fitted.chosen, len(fitted.target), len(np.unique(fitted.folds)))
    measured = measure(task, data)
    record = write_metrics(out, source, fitted, measured, text)
    document = ensemble_record(source, fitted, request.method, text)
    write_json(
        out / "ensemble.json",
        {"command": request.command, **document, **measured, "wall_time_s": clock.seconds},
    )
    if "gate" in record:
        print(record["gate"]["line"])
    print(f"run directory: {out}")
    return out
