#!/usr/bin/env python
"""Is the data loader the bottleneck? Its images/s against the model's training images/s.

    python benchmarks/loader.py [--config configs/image_folder.yaml] [--images 512] [--size 160]
                                [--batches 6] [--rounds 3]

Writes ``--images`` random-texture JPEGs (4 classes, ``--size`` pixels) into a temporary folder,
builds the config's data module on it (its image size, augmentation, batch size and workers),
then in alternating rounds times (a) iterating the training DataLoader (decode or cache,
augment, normalize, collate) and (b) training steps of the config's model on batches already in
memory (forward, loss, backward, optimizer step). Prints the median of each, images/s and the
ratio loader/model (target on the CPU: >= 2, the loader must not be what the GPU or CPU waits
for). The first epoch's indexing is not timed (a persistent index is a separate benchmark).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

import torch
from textures import write_images  # benchmarks/textures.py

from mlcycle.selection.config import build_data, resolve_config


def loader_rate(loader: torch.utils.data.DataLoader, batches: int) -> float:
    clock, seen = time.perf_counter(), 0
    for i, (x, *_) in enumerate(loader):
        seen += len(x)
        if i + 1 >= batches:
            break
    return seen / (time.perf_counter() - clock)


def model_rate(model: torch.nn.Module, batch: tuple, steps: int) -> float:
    x, y = batch[0], batch[1]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    clock = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
    return steps * len(x) / (time.perf_counter() - clock)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/image_folder.yaml")
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--batches", type=int, default=6, help="batches timed per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--no-cache", action="store_true", help="decode every image every time (cache_images=false)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "images"
        write_images(root, args.images, args.size, classes=4)
        extra = ["--data.cache_images=false"] if args.no_cache else []
        config = resolve_config(["--config", args.config, f"--data.root={root}", *extra])
        with redirect_stdout(StringIO()):
            data = build_data(config)
            _ = data.index  # index once, untimed
        from mlcycle.models import build_model

        init = config["model"]["init_args"]
        model = build_model(init["arch"], data.in_channels, data.num_classes)
        loader = data.train_dataloader()
        batch = next(iter(loader))
        loader_rate(loader, 1)  # warm-up: worker start, caches
        model_rate(model, batch, 1)
        loads, trains = [], []
        for _ in range(args.rounds):
            loads.append(loader_rate(loader, args.batches))
            trains.append(model_rate(model, batch, args.batches))
        load, train = statistics.median(loads), statistics.median(trains)
        hp = data.hparams
        print(
            f"{args.config}: {init['arch']}, image_size {list(data.image_size)}, batch "
            f"{hp.batch_size}, num_workers {hp.num_workers}, {torch.get_num_threads()} torch "
            f"threads, {args.images} JPEGs of {args.size}px, "
            f"{'decoded images cached in memory' if data.index.cache is not None else 'decoded every time'}"
        )
        print(f"data loader (augment, normalize, collate)  {load:8.1f} images/s")
        print(f"model training steps (fwd, bwd, AdamW)     {train:8.1f} images/s")
        print(f"ratio loader / model                        {load / train:8.2f}  (target >= 2)")


if __name__ == "__main__":
    main()
