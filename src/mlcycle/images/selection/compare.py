"""compare.py on images: the kinds of comparison of the image tasks.

:class:`ImageComparison` (segmentation, detection, and any image task that registers it): the
pool is the base data's train+val images; every candidate is a deep one, a train.py run per
fold, scored by its run's own val metrics (``metrics.json``, the best epoch).

:class:`ClassificationComparison` (classification): folds stratified by class; each deep fold
model predicts its fold, so candidates are scored on out-of-fold probabilities with the same
definitions for every family, and classic candidates (scikit-learn estimators on resized pixels,
on a deep candidate's embeddings, or on a pretrained backbone's or an earlier run's: a linear
probe, :mod:`mlcycle.images.selection.backbone`) join them. The report adds the error analysis,
highest-loss galleries, importance maps and the shortlist.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mlcycle.core.errors import UserError
from mlcycle.images.selection import backbone, deep, report
from mlcycle.images.selection.pool import ImagePool, build_image_pool, shrink
from mlcycle.selection.compare import classic
from mlcycle.selection.compare.comparison import Comparison
from mlcycle.selection.compare.out_of_fold import error_analysis, out_of_fold_probs
from mlcycle.selection.compare.shortlist import eligible, write_shortlist
from mlcycle.selection.compare.spec import Candidate
from mlcycle.selection.compare.summary import mean_per_class_f1
from mlcycle.selection.measure import torch_size
from mlcycle.selection.runs import train_args
from mlcycle.selection.scores import SCORES, fold_scores


class ImageComparison(Comparison):
    """Image candidates scored by their fold runs' own val metrics."""

    unit: ClassVar[str] = "image"
    stratified: ClassVar[bool] = False  # folds stratified by each image's class label

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pool: ImagePool
        self.rows = {path: i for i, path in enumerate(self.pool.paths)}

    @classmethod
    def build_pool(cls, data: Any, folds: int, seed: int, gap: int = 0) -> ImagePool:
        return build_image_pool(data, folds, seed, cls.stratified, gap)

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

    def run_fold(self, candidate: Candidate, fold: int, wants_embeddings: bool) -> dict[str, Any]:
        if candidate.kind == "deep":
            return self.run_deep(candidate, fold, wants_embeddings)
        return self.run_classic(candidate, fold)

    def run_deep(self, candidate: Candidate, fold: int, wants_embeddings: bool) -> dict[str, Any]:
        run_dir = self.fold_dir(candidate, fold)
        args = train_args(
            self.base_args, self.candidate_args(candidate) or [], self.split_files[fold], run_dir
        )
        predicts = self.predictions is not None
        result = deep.run_fold(args, run_dir, self.rows, classify=predicts)
        if wants_embeddings:
            features = deep.embed_rows(result["model"], result["data"], self.rows)
            np.savez_compressed(run_dir / "embeddings.npz", features=features)
        return result

    def run_classic(self, candidate: Candidate, fold: int) -> dict[str, Any]:
        raise UserError(
            f"candidate '{candidate.name}': classic candidates need classification data"
        )

    def notes(self, clock_s: float, fold_s: float) -> list[str]:
        return report.image_notes(self, clock_s, fold_s)


class ClassificationComparison(ImageComparison):
    """Image classifiers, deep and classic, scored on out-of-fold probabilities."""

    stratified = True
    predictions = "probs"
    names = SCORES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pixels: np.ndarray | None = None
        self._images: dict[int, np.ndarray] = {}
        self._backbones: dict[str, tuple[backbone.Backbone, np.ndarray]] = {}

    def score_fold(self, values: np.ndarray, target: np.ndarray) -> dict[str, Any]:
        return fold_scores(values, target, len(self.pool.class_names))

    def per_class_f1(self, records: list[dict[str, Any]]) -> dict[str, float]:
        return mean_per_class_f1(records, self.pool.class_names)

    def out_of_fold(self, records: list[dict[str, Any]]) -> np.ndarray | None:
        return out_of_fold_probs(records, len(self.pool), len(self.pool.class_names))

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

    def run_classic(self, candidate: Candidate, fold: int) -> dict[str, Any]:
        if candidate.args or candidate.configs:
            raise UserError(
                f"candidate '{candidate.name}': 'args' and 'config' of a classic candidate are "
                "for table comparisons; an image one is set by estimator, params, pca, scale"
            )
        train_rows, fold_rows = self.pool.fold_rows(fold)
        source = candidate.embeddings_of
        start, network = "", None
        if candidate.features != "pixels" and source is None:  # backbone:<arch>, run:<dir>
            network, features = self.network_features(candidate)
            to_features, start = network.embed, network.start
        elif source is None:
            features = self.pixels()
            size = self.spec.classic_size

            def to_features(batch: np.ndarray) -> np.ndarray:
                rows = [shrink(image, size) for image in batch]
                return np.stack(rows).reshape(len(rows), -1).astype(np.float32) / 255.0
        else:
            features, to_features = self.embeddings(source, fold)
            start = f"embeddings:{source}"
        result = classic.run_fold(
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
        if network is not None:  # the model served is the network and the classic model
            params, size = torch_size(network.network)
            result["params"] += params
            result["size_mb"] = round(result["size_mb"] + size, 4)
        return {**result, "start": start}

    def network_features(self, candidate: Candidate) -> tuple[backbone.Backbone, np.ndarray]:
        """The candidate's network (a pretrained backbone or a run's) and every pool image's
        embedding, computed once per comparison (kept under ``features/``)."""
        key = backbone.cache_key(candidate, self.pool.digest)
        if key not in self._backbones:
            if candidate.source("run") is not None:
                network = backbone.run_backbone(candidate)
            else:
                data = self.data
                network = backbone.pretrained_backbone(
                    candidate, data.in_channels, data.normalization, data.image_size
                )
            file = self.out / "features" / f"{key}.npz"
            self._backbones[key] = (network, backbone.pool_embeddings(network, self.pool, file))
        return self._backbones[key]

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

    def analyse(
        self, rows: list[dict[str, Any]], oof: dict[str, np.ndarray], mode: str, figures: Path
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Error analysis and highest-loss galleries of the candidates worth keeping (one at
        chance would swamp the scales), importance maps, and the shortlist."""
        good = eligible(rows, oof, mode) if oof else []
        found: dict[str, Any] = {}
        if good:
            kept = {n: oof[n] for n in good}
            found = error_analysis(kept, self.pool, figures)
            found["galleries"] = report.galleries(kept, self.pool, rows, figures)
        found["importance"] = report.importance(self, rows, figures)
        shortlisted = write_shortlist(self, oof, rows, mode) if oof else None
        return found, shortlisted
