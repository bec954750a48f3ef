"""Classic candidates on a network that no fold trains: a linear probe.

``features: backbone:<arch>`` builds the architecture with its pretrained weights through the
same code as train.py's ``model.weights`` / ``model.pretrained`` (by name from the library's
cache, or a local file) and feeds it the weights' own preprocessing (mean, std, input size);
``features: run:<dir>`` takes an earlier train.py run's best network and its data's
normalization. An image's embedding is the input of the network's last Linear layer (the
pooled features before the classifier, which is replaced by ``Identity``).

Every pool image is embedded once per comparison, kept in ``<out>/features/<name>.npz``, and
every fold reads it from there; the classic model's ms per image counts the network too.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mlcycle.core.errors import UserError
from mlcycle.data.normalization import weights_normalization
from mlcycle.models.pretrained import is_local_file
from mlcycle.models.registry import CLASSIFICATION_MODELS, build_model, preprocessing
from mlcycle.selection.compare.spec import Candidate
from mlcycle.selection.compare.start import weights_words

BATCH = 64


@dataclass
class Backbone:
    """A headless network and the input it expects."""

    network: nn.Module
    mean: list[float]
    std: list[float]
    size: tuple[int, int]
    start: str  # the leaderboard's start: backbone:resnet18 (IMAGENET1K_V1), run:<dir>

    @torch.no_grad()
    def embed(self, images: np.ndarray) -> np.ndarray:
        """uint8 N x H x W x C images -> float32 N x D embeddings."""
        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255
        if tuple(x.shape[2:]) != self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        mean = torch.tensor(self.mean).view(1, -1, 1, 1)
        std = torch.tensor(self.std).view(1, -1, 1, 1)
        return self.network((x - mean) / std).flatten(1).numpy().astype(np.float32)


def headless(network: nn.Module) -> nn.Module:
    """``network`` with its last Linear layer (the classifier) replaced by ``Identity``."""
    names = [name for name, m in network.named_modules() if isinstance(m, nn.Linear)]
    if not names:
        raise UserError(
            f"{type(network).__name__} has no Linear classifier to take embeddings before"
        )
    parent_name, _, child = names[-1].rpartition(".")
    parent = network.get_submodule(parent_name) if parent_name else network
    setattr(parent, child, nn.Identity())
    return network.float().cpu().eval()


def _pair(size: Any) -> tuple[int, int]:
    values = [int(v) for v in (size if isinstance(size, list | tuple) else [size, size])]
    return values[0], values[-1]


def pretrained_backbone(
    candidate: Candidate, channels: int, data_norm: tuple[list[float], list[float]], data_size: Any
) -> Backbone:
    """``backbone:<arch>`` with the candidate's weights; the weights' preprocessing (the
    data's own normalization and size for a local file or no weights)."""
    arch = str(candidate.source("backbone"))
    where = f"candidate '{candidate.name}'"
    weights, pretrained = candidate.weights, candidate.pretrained
    if weights and is_local_file(weights):
        pretrained = False
    try:
        spec = preprocessing(CLASSIFICATION_MODELS, arch, weights, None, None, pretrained)
        network = build_model(arch, channels, 2, weights=weights, pretrained=pretrained)
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from exc
    mean, std = weights_normalization(spec, channels) if spec else data_norm
    size = candidate.image_size or (spec or {}).get("image_size") or data_size
    if spec:
        label = weights_words(spec["weights"])
    else:
        label = f"file:{weights}" if weights else "random"
    return Backbone(headless(network), mean, std, _pair(size), f"backbone:{arch} ({label})")


def run_backbone(candidate: Candidate) -> Backbone:
    """``run:<dir>``: the run's best network, fed as the run was (its data.json)."""
    from mlcycle.run.loader import Run

    path = str(candidate.source("run"))
    try:
        run = Run(path)
        task = run.load_model("best")
    except UserError as exc:
        raise UserError(f"candidate '{candidate.name}': features run:{path}: {exc}") from exc
    info = run.data_info
    network = getattr(task, "model", task)
    return Backbone(
        headless(network), info["mean"], info["std"], _pair(info["image_size"]), f"run:{path}"
    )


def cache_key(candidate: Candidate, digest: str) -> str:
    """The features file's name: the source, its settings and the pool's folds."""
    parts: dict[str, Any] = {
        "features": candidate.features,
        "weights": candidate.weights,
        "pretrained": candidate.pretrained,
        "image_size": candidate.image_size,
        "pool": digest,
    }
    run = candidate.source("run")
    if run is not None:  # a retrained run's checkpoint is another network
        stat = (Path(run) / "checkpoints" / "best.ckpt").stat()
        parts["checkpoint"] = [stat.st_size, stat.st_mtime_ns]
    head, _, rest = candidate.features.partition(":")
    slug = "".join(c if c.isalnum() or c in "._-" else "_" for c in rest)[-40:]
    digest_ = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:10]
    return f"{head}-{slug}-{digest_}"


def pool_embeddings(backbone: Backbone, pool: Any, file: Path) -> np.ndarray:
    """Every pool image's embedding, in pool order: read from ``file`` when it holds them for
    these paths, else computed (in batches) and written there."""
    paths = np.array(pool.paths)
    if file.is_file():
        cached = np.load(file)
        if np.array_equal(cached["paths"], paths):
            return cached["features"]
    clock = time.perf_counter()
    chunks = []
    for start in range(0, len(paths), BATCH):
        rows = range(start, min(start + BATCH, len(paths)))
        chunks.append(backbone.embed(np.stack([pool.image(r) for r in rows])))
    features = np.concatenate(chunks)
    file.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(file, features=features, paths=paths)
    seconds = time.perf_counter() - clock
    print(
        f"{backbone.start}: {features.shape[1]} features of {len(paths)} images in "
        f"{seconds:.1f}s at {backbone.size[0]}x{backbone.size[1]}, kept in {file}"
    )
    return features
