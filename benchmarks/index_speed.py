#!/usr/bin/env python
"""Seconds to index an image folder: with a cold and a warm index cache, without one, and the
previous index step (every image read, hashed, decoded and resized on threads, every run).

    python benchmarks/index_speed.py [--images 5000] [--size 64] [--rounds 3]

Writes ``--images`` random-texture JPEGs (10 class folders) into a temporary folder, dated an
hour back as a data set at rest is (files modified in the last 2 s are never cached). Then in
alternating rounds times ``ImageClassificationData(...).index`` with a new cache folder (cold:
the first run), again with that folder (warm: the second run; then the separate pass that
decodes the images into memory for ``cache_images``), with ``index_cache=false``, and
the previous index step: the listing, then each image read, hashed, decoded and resized on up to
8 threads (what ``decode_all`` did). The files stay in the OS page cache throughout: "cold" is
the index cache, not the disk. Prints the medians, images/s and the ratios (targets on 2 cores:
cold >= 1,000 images/s, warm < 1 s), then how the facts of every image (read, sha256, decode)
go on one process, on threads and on processes, which is why the index uses processes.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import redirect_stderr, redirect_stdout
from functools import partial
from pathlib import Path
from typing import Any

import textures  # benchmarks/textures.py

from mlcycle.core.device import available_cores
from mlcycle.data.classification import ImageClassificationData
from mlcycle.data.file_facts import image_kind, read_job
from mlcycle.data.images import UnreadableImage, read_image
from mlcycle.data.index import parallel_map
from mlcycle.data.transforms import resize


def write_images(root: Path, count: int, size: int) -> list[Path]:
    paths = textures.write_images(root, count, size, classes=10)
    then = time.time() - 3600
    for path in paths:
        os.utime(path, (then, then))
    return paths


def data_module(root: Path, cache: Path | bool) -> ImageClassificationData:
    return ImageClassificationData(
        source="folder", root=str(root), image_size=32, index_cache=str(cache) if cache else False
    )


def index_seconds(root: Path, cache: Path | bool) -> float:
    start = time.perf_counter()
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):  # layout line, bars
        assert data_module(root, cache).index.samples
    return time.perf_counter() - start


def load_seconds(root: Path, cache: Path) -> float:
    """The pass that decodes and resizes every image into memory (``cache_images``)."""
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        data = data_module(root, cache)
        index = data.index
        start = time.perf_counter()
        index.load_items(data.index_workers)
    assert index.cache is not None
    return time.perf_counter() - start


def previous_decode(sample: Any, size: tuple[int, int]) -> Any:
    """The index's work per image before the cache: read, sha256, decode, resize."""
    try:
        image, digest, nbytes = read_image(sample.path, 3)
    except UnreadableImage as exc:
        return str(exc)
    return resize(*size)(image=image)["image"], digest, nbytes


def previous_seconds(root: Path) -> float:
    start = time.perf_counter()
    data = data_module(root, False)
    samples = data.list_samples().samples
    with redirect_stderr(io.StringIO()):
        parallel_map(partial(previous_decode, size=data.image_size), samples, "previous")
    return time.perf_counter() - start


def pool_seconds(make: Callable[[], Executor] | None, jobs: list[tuple[str, str]]) -> float:
    start = time.perf_counter()
    if make is None:
        list(map(read_job, jobs))
    else:
        with make() as pool:
            list(pool.map(read_job, jobs, chunksize=64))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cores = available_cores()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "images"
        paths = write_images(root, args.images, args.size)
        index_seconds(root, False)  # imports, page cache
        times: dict[str, list[float]] = {
            k: [] for k in ("previous", "none", "cold", "warm", "load")
        }
        for r in range(args.rounds):
            times["previous"].append(previous_seconds(root))
            times["none"].append(index_seconds(root, False))
            times["cold"].append(index_seconds(root, Path(tmp) / f"cache{r}"))
            times["warm"].append(index_seconds(root, Path(tmp) / f"cache{r}"))
            times["load"].append(load_seconds(root, Path(tmp) / f"cache{r}"))
        jobs = [(str(p), image_kind(3)) for p in paths]
        fork = multiprocessing.get_context("fork")
        pools = {
            "1 process": None,
            f"{cores} threads": partial(ThreadPoolExecutor, cores),
            f"{cores} processes": partial(ProcessPoolExecutor, cores, mp_context=fork),
        }
        facts = {name: [pool_seconds(make, jobs) for _ in range(args.rounds)] for name, make in pools.items()}  # fmt: skip
    n = len(paths)
    t = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"{n} JPEGs of {args.size}x{args.size} RGB, {cores} cores, median of {args.rounds} rounds"
    )
    print(f"{'index step':<52} {'seconds':>8} {'images/s':>9}")
    rows = [
        ("previous: read, hash, decode, resize on threads", "previous"),
        ("index_cache=false (read, hash, decode on processes)", "none"),
        ("cold index cache (first run)", "cold"),
        ("warm index cache (second run)", "warm"),
        ("then into memory (cache_images: decode, resize)", "load"),
    ]
    for words, key in rows:
        print(f"{words:<52} {t[key]:>8.3f} {n / t[key]:>9.0f}")
    cold_ok = n / t["cold"] >= 1000
    print(
        f"ratio previous / cold: {t['previous'] / t['cold']:.2f}   target >= 1,000 images/s: "
        f"{'met' if cold_ok else 'MISSED'}"
    )
    print(
        f"ratio previous / warm: {t['previous'] / t['warm']:.1f}   target < 1 s: "
        f"{'met' if t['warm'] < 1 else 'MISSED'}"
    )
    print(f"{'facts of every image (read, sha256, decode)':<52} {'seconds':>8} {'images/s':>9}")
    for name, seconds in facts.items():
        s = statistics.median(seconds)
        print(f"{name:<52} {s:>8.3f} {n / s:>9.0f}")


if __name__ == "__main__":
    main()
