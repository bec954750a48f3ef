#!/usr/bin/env python
"""CPU latency of exported segmentation and detection models beside eager PyTorch.

    python benchmarks/dense_export_latency.py [--seg-run RUN] [--det-run RUN] [--seconds S]

Models: the segmentation quick-start's U-Net (width 12, depth 3) at 3x64x64, batch 1 and 16
(eager, TorchScript, ONNX Runtime FP32 and INT8), and the detection quick-start's fcos_small at
3x128x128, batch 1 (eager, TorchScript, ONNX Runtime FP32; the graph holds the whole detector
with NMS). Without ``--seg-run`` / ``--det-run`` the weights are random (seeded); with a run
directory they are that run's best checkpoint, and the inputs its validation images, which
matters for detection (the number of boxes reaching NMS). INT8 is calibrated on random inputs
(latency only, not accuracy). Runtimes take turns in blocks, as in
``export_latency.py``; run on an otherwise idle machine. Prints the median ms per call and the
speed-up over eager.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from export_latency import time_blocks

from mlcycle.export import export_onnx, export_torchscript, quantize_int8
from mlcycle.export.detection import DetectionExport
from mlcycle.export.segmentation import SegmentationExport
from mlcycle.run.loader import Run
from mlcycle.tasks.detection import DetectionTask
from mlcycle.tasks.segmentation import SegmentationTask


def task_and_inputs(
    run: str | None, build: Callable[[], torch.nn.Module], shape: tuple[int, ...], count: int
) -> tuple[torch.nn.Module, np.ndarray]:
    if run is None:
        torch.manual_seed(0)
        x = np.random.default_rng(1).standard_normal((count, *shape)).astype(np.float32)
        return build().eval(), x
    loaded = Run(run)
    val = loaded.load_data(num_workers=0).dataset("val")
    x = torch.stack([val[i][0] for i in range(min(count, len(val)))]).float().numpy()
    return loaded.load_model(), x


def runtimes(
    module: torch.nn.Module, example: torch.Tensor, folder: Path, threads: int, exporter: object
) -> dict[str, Callable[[np.ndarray], object]]:
    outputs = len(exporter.io.outputs)
    ts = export_torchscript(module, example, folder / "m.ts", outputs)
    onnx_path = export_onnx(module, example, folder / "m.onnx", io=exporter.io)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.load(str(ts)).eval()
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1

    def session(path: Path) -> Callable[[np.ndarray], object]:
        s = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return lambda x: s.run(None, {"input": x})

    def torch_run(m: torch.nn.Module) -> Callable[[np.ndarray], object]:
        def run(x: np.ndarray) -> object:
            with torch.inference_mode():
                return m(torch.from_numpy(x))

        return run

    found = {"eager": torch_run(module), "torchscript": torch_run(scripted)}
    found["ort_fp32"] = session(onnx_path)
    if exporter.quantizable:
        rng = np.random.default_rng(0)
        calibration = (
            rng.standard_normal((8, *example.shape[1:])).astype(np.float32) for _ in range(4)
        )
        quantize_int8(onnx_path, folder / "m.int8.onnx", calibration)
        found["ort_int8"] = session(folder / "m.int8.onnx")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seg-run", help="a segmentation run directory (default: random U-Net)")
    parser.add_argument("--det-run", help="a detection run directory (default: random fcos_small)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seconds", type=float, default=8.0, help="timing per model and batch")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"load average {os.getloadavg()[0]:.2f}, {args.threads} threads, torch {torch.__version__}"
    )

    def seg() -> torch.nn.Module:
        return SegmentationTask(4, 3, arch="unet", arch_options={"width": 12, "depth": 3})

    def det() -> torch.nn.Module:
        return DetectionTask(3, 3, arch="fcos_small")

    cases = [
        ("unet 3x64x64", args.seg_run, seg, (3, 64, 64), SegmentationExport(), [1, 16]),
        ("fcos_small 3x128x128", args.det_run, det, (3, 128, 128), DetectionExport(), [1]),
    ]
    print(f"{'model':<22} {'batch':>5} {'runtime':<12} {'ms/call':>9} {'vs eager':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, run, build, shape, exporter, batches in cases:
            task, images = task_and_inputs(run, build, shape, max(batches))
            module = exporter.module(task).float().eval()
            folder = Path(tmp) / name.split()[0]
            folder.mkdir()
            found = runtimes(module, torch.from_numpy(images[:1]), folder, args.threads, exporter)
            for batch in batches:
                ms = time_blocks(found, np.ascontiguousarray(images[:batch]), args.seconds)
                for runtime, value in ms.items():
                    print(
                        f"{name:<22} {batch:>5} {runtime:<12} {value:>9.2f} "
                        f"{ms['eager'] / value:>8.2f}x"
                    )


if __name__ == "__main__":
    main()
