"""What compare.py's report adds for images: the words about the images, galleries of the
images each model got most wrong, and importance maps (attributions of the best deep model,
pixel permutation importance of the best classic one)."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from mlcycle.reports.figures import save
from mlcycle.selection.compare import analysis

GALLERY_MODELS = 4


def image_notes(comparison: Any, clock_s: float, fold_s: float) -> list[str]:
    spec, pool = comparison.spec, comparison.pool
    index = comparison.data.index
    return [
        f"{len(pool)} train+val images, {len(pool.class_names)} classes, {spec.folds} stratified "
        f"folds (seed {spec.fold_seed}); the test split ({len(index.positions['test'])} images) "
        "was sealed: no candidate predicted or scored it.",
        f"Data: {index.layout}; fingerprint {comparison.data.fingerprint[:16]}.",
        "Metric: mean and standard deviation over folds of each fold's out-of-fold score; "
        "latency: milliseconds per image from uint8 images to probabilities on one CPU thread, "
        "batches of 64 (the same for every family); size: saved weights (deep) or pickled model (classic).",
        f"Wall time of this command {clock_s:.0f} s; the candidate-folds took "
        f"{fold_s:.0f} s when they ran (a re-run resumes finished ones).",
    ]


def galleries(
    oof: dict[str, np.ndarray], pool: Any, rows: list[dict[str, Any]], figures: Path
) -> list[str]:
    """The highest-loss images of the best ``GALLERY_MODELS`` models, one figure each."""
    names, target = pool.class_names, pool.target
    losses = analysis.highest_loss(oof, target)
    ranked = [r["candidate"] for r in rows if r["candidate"] in oof][:GALLERY_MODELS]
    for name in ranked:
        figure = analysis.highest_loss_figure(name, losses[name], pool.image, names, target)
        save(figure, figures / f"highest_loss_{name}.png")
    return ranked


def best_of(comparison: Any, rows: list[dict[str, Any]], family: str, pixels: bool) -> str | None:
    """The best finished candidate of ``family`` (classic: on pixels only, when asked)."""
    by_name = {c.name: c for c in comparison.spec.candidates}
    for row in rows:
        name = row["candidate"]
        if row.get("mean") is None or row["family"] != family:
            continue
        if not pixels or by_name[name].features == "pixels":
            return name
    return None


def importance(comparison: Any, rows: list[dict[str, Any]], figures: Path) -> dict[str, str]:
    """Attribution maps of the best deep candidate's fold-0 model and pixel permutation
    importance of the best classic candidate on pixels (refitted on fold 0); a failure here
    is reported, never fatal."""
    written: dict[str, str] = {}
    try:
        best_deep = best_of(comparison, rows, "deep", pixels=False)
        if best_deep:
            written[best_deep] = attributions(comparison, best_deep, figures)
        best_classic = best_of(comparison, rows, "classic", pixels=True)
        if best_classic:
            written[best_classic] = permutation_map(comparison, best_classic, figures)
    except Exception as exc:  # figures are a help, not the result
        print(f"warning: importance maps not drawn: {type(exc).__name__}: {exc}", file=sys.stderr)
    return written


def fold0_picks(pool: Any) -> list[int]:
    """Two pool rows of every class in fold 0: the images the attributions explain."""
    from mlcycle.images.selection.importance import sample_per_class

    _, fold_rows = pool.fold_rows(0)
    return [int(fold_rows[i]) for i in sample_per_class(pool.target[fold_rows], 2)]


def attributions(comparison: Any, name: str, figures: Path) -> str:
    """Integrated gradients of the deep candidate's fold-0 model on a few fold-0 images."""
    import torch

    from mlcycle.images.selection.importance import cnn_attributions
    from mlcycle.run.loader import Run

    pool = comparison.pool
    candidate = next(c for c in comparison.spec.candidates if c.name == name)
    run = Run(comparison.fold_dir(candidate, 0))
    model = run.load_model("best")
    mean, std = run.data_info["mean"], run.data_info["std"]
    picks = fold0_picks(pool)
    images = [pool.image(r) for r in picks]
    x = np.stack(images).astype(np.float32) / 255
    x = (x - np.array(mean, dtype=np.float32)) / np.array(std, dtype=np.float32)
    inputs = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    targets = torch.from_numpy(pool.target[picks]).long()
    figure = cnn_attributions(model, inputs, targets, images, pool.class_names)
    save(figure, figures / f"attributions_{name}.png")
    return f"figures/attributions_{name}.png"


def permutation_map(comparison: Any, name: str, figures: Path) -> str:
    """Pixel permutation importance of the classic candidate refitted on fold 0, over the
    mean image of fold 0."""
    from mlcycle.images.selection.importance import (
        importance_map_figure,
        pixel_permutation_importance,
    )
    from mlcycle.images.selection.pool import shrink

    pool = comparison.pool
    candidate = next(c for c in comparison.spec.candidates if c.name == name)
    result = comparison.run_classic(candidate, 0)
    features = comparison.pixels()
    _, fold_rows = pool.fold_rows(0)
    shape = shrink(pool.image(0), comparison.spec.classic_size).shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        maps = pixel_permutation_importance(
            result["model"], features[fold_rows], pool.target[fold_rows], shape
        )
    mean_image = features[fold_rows].mean(axis=0).reshape(shape)
    mean_image = mean_image.mean(axis=-1) if mean_image.ndim == 3 else mean_image
    figure = importance_map_figure({name: maps}, mean_image)
    save(figure, figures / f"permutation_importance_{name}.png")
    return f"figures/permutation_importance_{name}.png"
