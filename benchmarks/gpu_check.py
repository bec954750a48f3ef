#!/usr/bin/env python
"""The GPU path in one prepared run (sized for about 6 minutes on one GPU); one table at the end.

    python benchmarks/gpu_check.py [--quick]

Without CUDA it prints one line and exits 0 (safe in CI). With CUDA:

* ResNet-50 training images/s at 224x224, bf16-mixed autocast + channels_last, on synthetic
  tensors already on the GPU, eager and with ``torch.compile``; peak GPU memory;
* the same eager step fed by a real DataLoader over synthetic JPEGs in a temp folder (decode,
  crop, pinned memory, workers from ``num_workers: auto``): the gap to the synthetic row is
  the loader's cost;
* ``scripts/train.py`` on configs/quickstart.yaml, segment_quickstart.yaml and
  detect_quickstart.yaml twice: 16-mixed, and bf16-mixed with ``model.channels_last`` and
  ``model.compile`` (detection: channels_last only, it refuses compile); 2 epochs (exit 0,
  finite metrics), then one more epoch resumed with ``--ckpt_path last``;
* ``scripts/export.py`` of the CUDA-trained (bf16, channels_last, compiled) quick-start run on
  the CPU (``CUDA_VISIBLE_DEVICES=""``): exit 0 means every artifact matched the eager model,
  so the compiled run's checkpoint loads as a plain network.

Every row is guarded: an error is printed in its cell and the other rows still run. The exit
code is 1 when any row failed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ("quickstart", "segment_quickstart", "detect_quickstart")
# Each task trains twice: plain 16-mixed, then bf16-mixed with the model's GPU options.
VARIANTS = (
    ("16-mixed", ()),
    ("bf16-mixed", ("--model.channels_last=true", "--model.compile=true")),
)
NOT_COMPILED = ("detect_quickstart",)  # DetectionTask refuses model.compile


def variant_args(config: str, extra: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(a for a in extra if not (config in NOT_COMPILED and "compile" in a))


def _resnet50_step(batch: int, compiled: bool) -> tuple[Callable[..., float], torch.nn.Module]:
    import torchvision

    model = (
        torchvision.models.resnet50(num_classes=1000).cuda().to(memory_format=torch.channels_last)
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    forward = torch.compile(model) if compiled else model

    def step(x: torch.Tensor, y: torch.Tensor) -> float:
        x = x.cuda(non_blocking=True).to(memory_format=torch.channels_last)
        y = y.cuda(non_blocking=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = loss_fn(forward(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return batch

    return step, model


def _timed(
    step: Callable[..., float], batches: Callable[[], object], warmup: int, steps: int
) -> float:
    """Images per second over ``steps`` steps after ``warmup`` (compilation happens there)."""
    it = iter(batches())
    for _ in range(warmup):
        step(*next(it))
    torch.cuda.synchronize()
    start, images = time.perf_counter(), 0.0
    for _ in range(steps):
        images += step(*next(it))
    torch.cuda.synchronize()
    return images / (time.perf_counter() - start)


def synthetic(batch: int, steps: int, compiled: bool) -> str:
    from mlcycle.core.device import enable_cuda_speedups

    enable_cuda_speedups()
    torch.cuda.reset_peak_memory_stats()
    step, _ = _resnet50_step(batch, compiled)
    x = torch.randn(batch, 3, 224, 224, device="cuda")
    y = torch.randint(0, 1000, (batch,), device="cuda")

    def batches():
        while True:
            yield x, y

    rate = _timed(step, batches, warmup=10 if compiled else 5, steps=steps)
    peak = torch.cuda.max_memory_allocated() / 2**30
    return f"{rate:,.0f} img/s, peak {peak:.1f} GiB"


class _Jpegs(torch.utils.data.Dataset):
    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        import numpy as np
        from PIL import Image

        with Image.open(self.paths[i]) as img:
            arr = np.asarray(img.convert("RGB").resize((224, 224)), dtype=np.float32) / 255.0
        x = torch.from_numpy(arr).permute(2, 0, 1)
        return (x - 0.45) / 0.225, i % 1000


def loader(batch: int, steps: int, folder: Path) -> str:
    import numpy as np
    from PIL import Image

    from mlcycle.core.device import available_cores, resolve_num_workers

    rng = np.random.default_rng(0)
    paths = []
    for i in range(batch * 4):
        path = folder / f"{i:05d}.jpg"
        Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(path, quality=90)
        paths.append(path)
    workers = resolve_num_workers("auto", batch, available_cores())
    data = torch.utils.data.DataLoader(
        _Jpegs(paths),
        batch_size=batch,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=True,
    )

    def batches():
        while True:
            yield from data

    step, _ = _resnet50_step(batch, compiled=False)
    rate = _timed(step, batches, warmup=3, steps=steps)
    return f"{rate:,.0f} img/s ({workers} workers)"


def _train(args: list[str], timeout: int, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env
    )
    if done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"exit {done.returncode}: {last[0][:160]}")


def train_and_resume(
    config: str, precision: str, extra: tuple[str, ...], run_dir: Path, timeout: int
) -> str:
    base = ["scripts/train.py", "--config", f"configs/{config}.yaml", f"--run_dir={run_dir}"]
    base += [f"--trainer.precision={precision}", "--trainer.enable_progress_bar=false", *extra]
    start = time.perf_counter()
    _train([*base, "--trainer.max_epochs=2"], timeout)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    values = {k: v for k, v in metrics.items() if k.startswith(("val/", "train/"))}
    bad = [k for k, v in values.items() if isinstance(v, float) and not math.isfinite(v)]
    if metrics.get("status") != "finished" or bad or not values:
        raise RuntimeError(f"status {metrics.get('status')}, not finite: {bad or 'no metrics'}")
    if metrics.get("precision") != precision:
        raise RuntimeError(f"ran in {metrics.get('precision')}, not {precision}")
    _train([*base, "--trainer.max_epochs=3", "--ckpt_path=last"], timeout)
    resumed = json.loads((run_dir / "metrics.json").read_text())
    if resumed.get("status") != "finished" or resumed.get("resumed_from") != "last":
        raise RuntimeError(f"resume: status {resumed.get('status')}")
    monitor = metrics.get("monitor", "")
    return (
        f"ok {monitor} {metrics.get(monitor, float('nan')):.3f}, resumed; "
        f"{time.perf_counter() - start:.0f}s"
    )


def export_on_cpu(run_dir: Path, timeout: int) -> str:
    if not (run_dir / "metrics.json").is_file():
        raise RuntimeError(f"no trained run at {run_dir}")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    out = run_dir / "export_cpu"
    _train(["scripts/export.py", "--run", str(run_dir), "--out", str(out), "--force"], timeout, env)
    return "ok (exit 0, artifacts match the eager model)"


def row(rows: list[tuple[str, str]], name: str, fn: Callable[[], str]) -> None:
    start = time.perf_counter()
    try:
        cell = fn()
    except Exception as exc:  # a broken row must not hide the others
        cell = f"ERROR {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
    finally:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    rows.append((name, cell))
    print(f"  [{time.perf_counter() - start:5.1f}s] {name}: {cell}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="Fewer steps; skip torch.compile.")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--train-timeout", type=int, default=240, help="Seconds per train.py call.")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU available; nothing to check (exit 0)")
        return 0
    steps = 10 if args.quick else 30
    rows: list[tuple[str, str]] = [
        ("GPU", f"{torch.cuda.get_device_name(0)}, bf16 {torch.cuda.is_bf16_supported()}"),
        ("torch", torch.__version__),
    ]
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        work = Path(tmp)
        (work / "jpegs").mkdir()
        b = args.batch_size
        row(
            rows,
            f"resnet50 224 bf16 channels_last b{b}, synthetic, eager",
            lambda: synthetic(b, steps, False),
        )
        if not args.quick:
            row(
                rows,
                f"resnet50 224 bf16 channels_last b{b}, synthetic, compiled",
                lambda: synthetic(b, steps, True),
            )
        row(
            rows,
            f"resnet50 224 bf16 channels_last b{b}, JPEG DataLoader, eager",
            lambda: loader(b, steps, work / "jpegs"),
        )
        for config in CONFIGS:
            for precision, extra in VARIANTS:
                extra = variant_args(config, extra)
                options = "".join(f" {a.split('.')[-1]}" for a in extra)
                run_dir = work / f"{config}_{precision}"
                row(
                    rows,
                    f"train.py {config} {precision}{options} 2 epochs + resume",
                    lambda c=config, p=precision, e=extra, r=run_dir: train_and_resume(
                        c, p, e, r, args.train_timeout
                    ),
                )
        row(
            rows,
            "export.py on the CPU of quickstart bf16-mixed channels_last compile",
            lambda: export_on_cpu(work / "quickstart_bf16-mixed", args.train_timeout),
        )
    width = max(len(name) for name, _ in rows)
    print(f"{'check':<{width}} | result")
    print(f"{'-' * width}-+-{'-' * 40}")
    for name, cell in rows:
        print(f"{name:<{width}} | {cell}")
    return 1 if any(cell.startswith("ERROR") for _, cell in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
