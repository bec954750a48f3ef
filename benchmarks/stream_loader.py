"""Streaming (litdata chunks) against the local folder it was written from, side by side.

    python benchmarks/stream_loader.py                 # 2,000 images, a couple of minutes
    python benchmarks/stream_loader.py --images 20000  # the issue's size
    python benchmarks/stream_loader.py --s3            # the stream on a moto S3 server (loopback)

For each: the first-epoch start (data module made to the first train batch: the folder indexes
and hashes every file, the stream reads its records and first chunk), the loader's images/s over
one epoch of the train split, and the images/s of a small CNN trained over that epoch on the CPU.
The folder's index cache and image cache are off (a first run, data that does not fit in
memory); both decode the same PNG bytes each epoch.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn


def write_images(root: Path, count: int, size: int, classes: int = 4) -> None:
    rng = np.random.default_rng(0)
    for i in range(count):
        label = i % classes
        folder = root / f"class{label}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 120, (size, size, 3), dtype=np.uint8)
        pixels[..., label % 3] += 100
        Image.fromarray(pixels).save(folder / f"{i}.png")


def small_cnn(classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(32, classes),
    )  # fmt: skip


def measure(make_dm, classes: int) -> dict[str, float]:
    start = time.perf_counter()
    dm = make_dm()
    loader = dm.train_dataloader()
    batches = iter(loader)
    first = next(batches)
    started = time.perf_counter() - start
    seen, t0 = len(first[0]), time.perf_counter()
    for x, _, _ in batches:
        seen += len(x)
    loading = seen / (time.perf_counter() - t0)
    model = small_cnn(classes)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    trained, t0 = 0, time.perf_counter()
    for x, y, _ in dm.train_dataloader():
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        trained += len(x)
    return {
        "start_s": started,
        "loader_img_s": loading,
        "train_img_s": trained / (time.perf_counter() - t0),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--size", type=int, default=64, help="generated image side, pixels")
    p.add_argument("--image_size", type=int, default=32, help="training resize")
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--workers", type=int, default=1, help="loader workers, both sides")
    p.add_argument("--s3", action="store_true", help="stream from a moto S3 server on loopback")
    args = p.parse_args()
    torch.set_num_threads(1)

    from mlcycle.data import ImageClassificationData
    from mlcycle.data.stream import StreamImageData
    from mlcycle.data.stream_store import Store
    from mlcycle.data.stream_write import write_stream

    common = dict(image_size=args.image_size, batch_size=args.batch_size, num_workers=args.workers)
    common |= dict(mean=[0.5] * 3, std=[0.25] * 3)  # the same, given: neither measures
    common |= dict(cache_images=False)  # data that does not fit: both decode every epoch
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        write_images(folder, args.images, args.size)
        options, url = {}, str(Path(tmp) / "stream")
        if args.s3:
            import boto3
            from moto.server import ThreadedMotoServer

            os.environ.update(
                AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1"
            )
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            server.start()
            host, port = server.get_host_and_port()
            options = {"endpoint_url": f"http://{host}:{port}"}
            boto3.client("s3", **options).create_bucket(Bucket="bench")
            url = "s3://bench/stream"

        def folder_dm():
            return ImageClassificationData(
                source="folder", root=str(folder), index_cache=False, **common
            )

        t0 = time.perf_counter()
        write_stream(folder_dm(), Store(url, options), workers=max(1, args.workers))
        written = time.perf_counter() - t0
        cache = {"cache_dir": str(Path(tmp) / "chunks")}
        ours = measure(
            lambda: StreamImageData(root=url, source_options={**options, **cache}, **common), 4
        )
        base = measure(folder_dm, 4)
    where = "moto S3 on loopback" if args.s3 else "a local folder"
    print(f"{args.images} images {args.size}px, resized to {args.image_size}, batch {args.batch_size}, "
          f"{args.workers} loader worker(s); stream in {where}, written in {written:.1f} s")  # fmt: skip
    print(f"{'':8} {'first batch s':>14} {'loader img/s':>13} {'train img/s':>12}")
    for name, r in (("folder", base), ("stream", ours)):
        print(f"{name:8} {r['start_s']:14.2f} {r['loader_img_s']:13.0f} {r['train_img_s']:12.0f}")
    print(f"ratio stream/folder: loader {ours['loader_img_s'] / base['loader_img_s']:.2f}, "
          f"train {ours['train_img_s'] / base['train_img_s']:.2f}, start {ours['start_s'] / base['start_s']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
