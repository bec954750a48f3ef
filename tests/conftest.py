"""Tiny generated image data sets and a helper that runs train.py in-process."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from postgres_fixture import postgres_server, postgres_url, registry_url, store_url  # noqa: F401

PATTERNS = ("stripes_h", "stripes_v", "blob")


def pytest_configure(config):
    """Under pytest-xdist (``make test`` runs one worker per core) each worker computes on one
    thread, and so do the scripts it starts: two workers of two threads each on two cores
    would only wait for each other."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        import torch

        torch.set_num_threads(1)


# The files that take longest (summed test seconds on 2 cores, `--durations=0`), longest first.
# `make test` deals whole files to the two workers in collection order (--dist loadfile): dealt
# first, the long ones no longer end the run on one worker while the other waits.
LONGEST_FIRST = (
    "test_ray_executor.py",
    "test_shared_database.py",
    "test_tune.py",
    "test_notebook.py",
    "test_boosted.py",
    "test_export_dense.py",
    "test_gpu_path.py",
    "test_plugin.py",
    "test_ddp.py",
    "test_compare_tables.py",
    "test_tables_eda.py",
    "test_compare_export.py",
    "test_stream.py",
    "test_ensemble_tables_shortlist.py",
    "test_ensemble.py",
    "test_compare.py",
)


def pytest_collection_modifyitems(items):
    """The longest files first (``LONGEST_FIRST``), the rest after them as collected; the tests
    of a file keep their order."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def pattern(kind: str, size: int, seed: int) -> np.ndarray:
    """A learnable grayscale pattern per class, with noise so no two images are alike."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    period = 4 + seed % 3
    if kind == "stripes_h":
        base = (yy // (period // 2)) % 2
    elif kind == "stripes_v":
        base = (xx // (period // 2)) % 2
    else:
        cy, cx = rng.integers(size // 4, 3 * size // 4, size=2)
        base = ((yy - cy) ** 2 + (xx - cx) ** 2 < (size / 4) ** 2).astype(float)
    return np.clip(base * 200 + rng.normal(30, 20, (size, size)), 0, 255).astype(np.uint8)


def write_folder(
    root: Path, per_class: int = 12, size: int = 16, classes=PATTERNS, mode: str = "L"
) -> Path:
    for c, kind in enumerate(classes):
        folder = root / kind
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = Image.fromarray(pattern(kind, size, seed=c * 1000 + i), mode="L")
            img.convert(mode).save(folder / f"{kind}_{i:03d}.png")
    return root


def tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under root, to prove a run left the user's data untouched."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    return write_folder(tmp_path / "images")


def train_args(data_root: Path, run_dir: Path, *extra: str) -> list[str]:
    return [
        "--config",
        "configs/image_folder.yaml",
        f"--data.root={data_root}",
        "--model.arch=small_cnn",
        "--data.image_size=16",
        "--data.batch_size=8",
        "--data.num_workers=0",
        "--trainer.max_epochs=1",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--run_dir={run_dir}",
        *extra,
    ]


def run_train(data_root: Path, run_dir: Path, *extra: str) -> Path:
    from mlcycle.commands.train import main

    return main(train_args(data_root, run_dir, *extra))


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """One small finished run shared by the evaluation tests."""
    base = tmp_path_factory.mktemp("trained")
    data = write_folder(base / "images", per_class=14)
    return run_train(data, base / "run", "--trainer.max_epochs=2")


@pytest.fixture(autouse=True)
def _repo_cwd(monkeypatch):
    """Tests run from the repository root, where configs/ lives."""
    monkeypatch.chdir(Path(__file__).resolve().parents[1])


@pytest.fixture(autouse=True, scope="session")
def _index_cache(tmp_path_factory):
    """The data index cache of every test lives in a session folder, never in the home cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLCYCLE_CACHE_DIR", str(tmp_path_factory.mktemp("index_cache")))
        yield


@pytest.fixture(scope="session")
def plugin_path(tmp_path_factory) -> Path:
    """examples/plugin, pip-installed once a session into a folder of its own."""
    from plugin_helpers import install_plugin

    return install_plugin(tmp_path_factory.mktemp("plugin"))
