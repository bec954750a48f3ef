#!/usr/bin/env python
"""Milliseconds per training step (forward, cross-entropy, backward, AdamW step) of backbones
built by ``mlcycle.models.build_model`` on the CPU, side by side in one process:
the quick-start ``small_cnn`` (the model of ``benchmarks/overhead.py``'s plain loop), a
torchvision backbone and a timm backbone, from random weights (pretrained weights cost the same
per step).

    python benchmarks/backbone_step.py [--size 64] [--batch 32] [--steps 20] [--threads 2]

Each model runs ``--steps`` steps after 3 warm-up steps, in alternating rounds; the median over
the rounds is printed.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.nn import functional as F

from mlcycle.models import build_model

ARCHS = (
    "small_cnn",
    "resnet18",
    "timm/resnet18",
    "mobilenet_v3_small",
    "timm/mobilenetv3_small_100",
)


def step_ms(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--archs", nargs="+", default=list(ARCHS))
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    x = torch.randn(args.batch, 3, args.size, args.size)
    y = torch.randint(0, 10, (args.batch,))
    models = {a: build_model(a, 3, 10) for a in args.archs}
    times: dict[str, list[float]] = {a: [] for a in args.archs}
    for _ in range(args.rounds):
        for arch, model in models.items():
            times[arch].append(step_ms(model, x, y, args.steps))
    print(f"CPU, {args.threads} threads, batch {args.batch}, {args.size}x{args.size} RGB, AdamW")
    print(f"{'architecture':28} {'params':>8} {'ms/step':>9} {'ms/image':>9}")
    for arch, model in models.items():
        ms = statistics.median(times[arch])
        params = sum(p.numel() for p in model.parameters()) / 1e6
        print(f"{arch:28} {params:7.2f}M {ms:9.1f} {ms / args.batch:9.2f}")


if __name__ == "__main__":
    main()
