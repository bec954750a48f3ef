"""What the EDA shows, computed once: counts, sizes, channel statistics, a 2-D map, duplicate,
leakage and outlier findings, the manifest's or query's extra attributes, and for segmentation
and detection data their masks or boxes. What is read, and how, is the data kind's part
(:meth:`~mlcycle.quality.image_quality.ImageQuality.read`).

Only train and val images are decoded unless ``include_test`` is set.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlcycle.quality.attributes import Attribute, describe_attributes
from mlcycle.quality.config import build_data, data_argv
from mlcycle.quality.findings import (
    Item,
    Thresholds,
    exact_groups,
    label_conflicts,
    leakage,
    near_duplicates,
    outliers,
)
from mlcycle.quality.kinds import quality_of

TSNE_MAX = 1000  # t-SNE points at most (it is quadratic); PCA takes every analysed image


@dataclass
class Annotations:
    """Masks or boxes of the analysed images, for the annotation tables and figures."""

    task: str  # segmentation or detection
    unit: str  # what the class counts count
    class_names: list[str]
    rows: list[dict[str, Any]]  # one per analysed image (see MaskChecks.rows, BoxChecks.rows)
    summary: dict[str, Any]
    findings: dict[str, list[dict]] = field(default_factory=dict)
    checks: Any = field(default=None, repr=False)  # the kind's checks, which draw its figures


@dataclass
class EDA:
    """The analysis; figures and tables read it, nothing else does any work."""

    configs: list[str]
    overrides: list[str]  # the --data arguments
    include_test: bool
    sample: int | None
    seed: int
    source: str
    created: str
    all_counts: dict[str, dict[str, int]]  # split -> class -> files (every listed file)
    file_types: dict[str, int]  # extension -> files among the analysed splits
    items: list[Item]  # decoded files that were analysed
    not_decoded: list[tuple[str, str]]  # (path, problem) among the analysed files
    skipped_test: int  # test files not decoded (without include_test)
    sampled_out: int  # files of the analysed splits left out by --sample
    findings: dict[str, list[dict]] = field(default_factory=dict)
    pca: np.ndarray | None = None  # (len(items), 2)
    pca_variance: list[float] = field(default_factory=list)
    tsne: np.ndarray | None = None  # (len(tsne_index), 2)
    tsne_index: list[int] = field(default_factory=list)
    attributes: list[Attribute] = field(default_factory=list)
    attribute_correlations: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    task: str = ""  # the data kind's name (classification, segmentation, detection, ...)
    count_unit: str = "files"  # what all_counts counts: files, images with the class, objects
    classes: list[str] = field(default_factory=list)  # in the data module's order, when known
    annotations: Annotations | None = None  # masks or boxes (segmentation, detection)

    @property
    def class_names(self) -> list[str]:
        return self.classes or sorted({c for counts in self.all_counts.values() for c in counts})

    @property
    def splits_read(self) -> list[str]:
        return ["train", "val", "test"] if self.include_test else ["train", "val"]


def pick(indexes: list[int], labels: list[str], cap: int | None, seed: int) -> list[int]:
    """At most ``cap`` indexes, at random, keeping up to 5 of every class first."""
    if cap is None or len(indexes) <= cap:
        return indexes
    rng = np.random.default_rng(seed)
    order = [indexes[i] for i in rng.permutation(len(indexes))]
    first, seen = [], Counter()
    for i in order:
        if seen[labels[i]] < 5:
            first.append(i)
            seen[labels[i]] += 1
    taken = set(first)
    rest = [i for i in order if i not in taken]
    return sorted((first + rest)[:cap])


def _embed(eda: EDA, seed: int) -> None:
    """PCA of every analysed image and t-SNE of up to TSNE_MAX, on 16x16 gray thumbnails."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    n = len(eda.items)
    if n < 3:
        return
    x = np.stack([it.facts.thumb.ravel() for it in eda.items]).astype(np.float32) / 255.0
    x -= x.mean(axis=0)
    index = sorted(np.random.default_rng(seed).permutation(n)[:TSNE_MAX].tolist())
    # One BLAS/OpenMP thread: on a small shared machine, spinning thread pools made t-SNE of 300
    # points take 45 s instead of 1.5 s; these problem sizes gain nothing from threads.
    with threadpool_limits(1):
        pca = PCA(n_components=2, random_state=seed)
        eda.pca = pca.fit_transform(x)
        eda.pca_variance = [round(float(v), 4) for v in pca.explained_variance_ratio_]
        if len(index) >= 5:
            perplexity = float(min(30, max(2, (len(index) - 1) // 3)))
            tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
            eda.tsne, eda.tsne_index = tsne.fit_transform(x[index]), index


def analyse(
    configs: list[str],
    overrides: dict[str, Any] | list[str] | None = None,
    sample: int | None = None,
    include_test: bool = False,
    seed: int = 0,
    workers: int | None = None,
) -> EDA:
    """Run the whole analysis (a few seconds per thousand images, plus t-SNE). ``overrides``:
    ``{"root": PATH}`` or ``["--data.root=PATH"]``, applied as train.py applies them."""
    start = time.perf_counter()
    argv = data_argv(overrides)
    dm = build_data(configs, argv)
    return analyse_data(dm, configs, argv, sample, include_test, seed, workers, start=start)


def analyse_data(
    dm: Any,
    configs: list[str],
    overrides: list[str],
    sample: int | None = None,
    include_test: bool = False,
    seed: int = 0,
    workers: int | None = None,
    part: Any = None,
    start: float | None = None,
) -> EDA:
    """The analysis of the image data module ``dm``; ``part`` is the quality part of its kind
    (an :class:`~mlcycle.quality.image_quality.ImageQuality`), asked if not given."""
    start = time.perf_counter() if start is None else start
    part = part or quality_of(dm)
    wanted = {"train", "val", "test"} if include_test else {"train", "val"}
    fields = part.read(dm, wanted, sample, seed, workers)
    metas = fields.pop("metas", [])
    eda = EDA(
        configs=[str(c) for c in configs],
        overrides=overrides,
        include_test=include_test,
        sample=sample,
        seed=seed,
        source=str(dm.hparams.source),
        created=time.strftime("%Y-%m-%d %H:%M:%S"),
        **fields,
    )
    eda.findings = image_findings(eda.items, part.labels_per_file)
    _embed(eda, seed)
    if metas:
        eda.attributes, eda.attribute_correlations = describe_attributes(
            metas, [it.label for it in eda.items]
        )
    eda.seconds = round(time.perf_counter() - start, 2)
    return eda


def image_findings(items: list[Item], labels_per_file: bool) -> dict[str, list]:
    """Duplicates, leakage, label conflicts (with a label per file) and outliers."""
    t = Thresholds()
    groups = exact_groups(items)
    near = near_duplicates(items, t.near_distance, t.near_correlation)
    return {
        "exact_duplicates": [[items[i].path for i in g] for g in groups],
        "near_duplicates": [
            {"files": [items[i].path, items[j].path], "distance": d} for i, j, d in near
        ],
        "leakage": leakage(items, groups, near),
        "label_conflicts": label_conflicts(items, groups, near) if labels_per_file else [],
        "outliers": outliers(items, t.outlier_z),
    }
