#!/usr/bin/env python
"""CPU latency of eager PyTorch, TorchScript, ONNX Runtime FP32 and ONNX Runtime INT8.

    python benchmarks/export_latency.py [--threads N] [--seconds S] [--json out.json]

Models: torchvision resnet18 at 3x224x224 (random weights, 10 classes) and the quick-start
small_cnn at its configured size (1x16x16, 10 classes). The artifacts are written with the same
code as ``scripts/export.py``; INT8 is calibrated on random inputs (latency only, not accuracy).
Runtimes are timed in alternating blocks so that load from other processes hits all of them
alike. Eager PyTorch (OpenMP) slows down badly when another process holds a core, so run this
on an otherwise idle machine (the load average is printed). The table shows the median time per
call and the speed-up over eager (eager ms / runtime ms).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
import yaml

from mlcycle.export import export_onnx, export_torchscript, quantize_int8
from mlcycle.models import build_model

ROOT = Path(__file__).resolve().parents[1]
RUNTIMES = ("eager", "torchscript", "ort_fp32", "ort_int8")


def quickstart_shape() -> tuple[int, int, int]:
    """(channels, height, width) of the quick-start: 1 channel (digits) at data.image_size."""
    config = yaml.safe_load((ROOT / "configs" / "quickstart.yaml").read_text())
    size = config["data"]["init_args"].get("image_size", 32)
    h, w = (size, size) if isinstance(size, int) else size
    return 1, int(h), int(w)


def build_runtimes(
    arch: str, shape: tuple[int, int, int], folder: Path, threads: int
) -> dict[str, Callable[[np.ndarray], object]]:
    torch.manual_seed(0)
    model = build_model(arch, shape[0], 10).eval()
    example = torch.randn(2, *shape)
    ts_path = export_torchscript(model, example, folder / f"{arch}.ts")
    onnx_path = export_onnx(model, example, folder / f"{arch}.onnx")
    rng = np.random.default_rng(0)
    calibration = (rng.standard_normal((8, *shape)).astype(np.float32) for _ in range(4))
    int8_path = folder / f"{arch}.int8.onnx"
    quantize_int8(onnx_path, int8_path, calibration)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.load(str(ts_path)).eval()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    sessions = {
        name: ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        for name, path in (("ort_fp32", onnx_path), ("ort_int8", int8_path))
    }

    def torch_runner(module: torch.nn.Module) -> Callable[[np.ndarray], object]:
        def run(x: np.ndarray) -> object:
            with torch.inference_mode():
                return module(torch.from_numpy(x))

        return run

    def ort_runner(session: ort.InferenceSession) -> Callable[[np.ndarray], object]:
        return lambda x: session.run(None, {"input": x})

    return {
        "eager": torch_runner(model),
        "torchscript": torch_runner(scripted),
        "ort_fp32": ort_runner(sessions["ort_fp32"]),
        "ort_int8": ort_runner(sessions["ort_int8"]),
    }


def time_blocks(
    runtimes: dict[str, Callable[[np.ndarray], object]],
    x: np.ndarray,
    seconds: float,
    passes: int = 3,
) -> dict[str, float]:
    """Median milliseconds per call.

    Runtimes take turns in blocks (A B C D, A B C D, ...) so that slow drift from other load hits
    all of them alike; each block drops its first call, which can meet the previous runtime's
    worker threads still spinning.
    """
    for run in runtimes.values():  # warm-up: allocations, TorchScript profiling, ORT arenas
        deadline = time.perf_counter() + min(1.0, seconds / 8)
        for i in range(50):
            run(x)
            if i >= 2 and time.perf_counter() > deadline:
                break
    samples: dict[str, list[float]] = {name: [] for name in runtimes}
    budget = seconds / (passes * len(runtimes))
    for _ in range(passes):
        for name, run in runtimes.items():
            block: list[float] = []
            end = time.perf_counter() + budget
            while len(block) < 4 or (time.perf_counter() < end and len(block) < 500):
                start = time.perf_counter()
                run(x)
                block.append((time.perf_counter() - start) * 1000)
            samples[name].extend(block[1:])
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seconds", type=float, default=8.0, help="timing per model and batch")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    models = [("resnet18", (3, 224, 224)), ("small_cnn", quickstart_shape())]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for arch, shape in models:
            runtimes = build_runtimes(arch, shape, Path(tmp), args.threads)
            for batch in args.batches:
                x = np.random.default_rng(1).standard_normal((batch, *shape)).astype(np.float32)
                ms = time_blocks(runtimes, x, args.seconds)
                for name in RUNTIMES:
                    results.append(
                        {
                            "model": arch,
                            "input": "x".join(map(str, shape)),
                            "batch": batch,
                            "runtime": name,
                            "ms": ms[name],
                            "images_per_s": batch * 1000 / ms[name],
                            "speedup_vs_eager": ms["eager"] / ms[name],
                        }
                    )
    cpu = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(
        f"CPU: {cpu}; threads: {args.threads}; torch {torch.__version__}, "
        f"onnxruntime {ort.__version__}; load average at the end: {load}"
    )
    print(
        f"{'model':<10} {'input':<10} {'batch':>5}  {'runtime':<12} {'ms/batch':>9} "
        f"{'img/s':>9} {'vs eager':>8}"
    )
    for r in results:
        print(
            f"{r['model']:<10} {r['input']:<10} {r['batch']:>5}  {r['runtime']:<12} "
            f"{r['ms']:>9.2f} {r['images_per_s']:>9.1f} {r['speedup_vs_eager']:>7.2f}x"
        )
    if args.json:
        args.json.write_text(
            json.dumps({"cpu": cpu, "threads": args.threads, "results": results}, indent=2) + "\n"
        )


if __name__ == "__main__":
    main()
