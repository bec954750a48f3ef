#!/usr/bin/env python
"""One dark slice of the digits: does evaluation by slice flag it, where the whole F1 hides it?

    python benchmarks/slices_dark.py [--epochs 4] [--dim 0.2] [--out /tmp/slices_dark]

The bundled digits are written to a fresh folder with a manifest (``path,label,split,camera``).
Images from camera ``night`` are darkened (every pixel times ``--dim``) and are rare in train
(``--train-night`` of it) but common in val (``--val-night``), as a camera added after the data
was collected would be. A small CNN (the quick start's, train.py) trains on it; evaluate.py
scores val with its slices by default (the manifest's ``camera`` column, and quantile bins of
brightness, contrast, size and aspect). Reported side by side: the whole val F1 (all one score
says) and each slice's F1 with its 95% bootstrap interval; the benchmark fails unless the
slices ``camera=night`` and the darkest brightness bin are flagged.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image


def dark_digits(folder: Path, dim: float, train_night: float, val_night: float, seed: int):
    """``folder/images/<i>.png`` and ``folder/images/digits.csv``; the number of night images."""
    from mlcycle.data.digits import write_digits

    source = write_digits(folder / "digits")
    files = sorted(source.glob("*/*.png"))
    out = folder / "images"
    out.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    split = rng.choice(["train", "val"], len(files), p=[0.65, 0.35])
    night_share = np.where(split == "train", train_night, val_night)
    night = rng.random(len(files)) < night_share
    rows = []
    for i, file in enumerate(files):
        pixels = np.asarray(Image.open(file), dtype=np.float32)
        if night[i]:
            pixels = pixels * dim
        Image.fromarray(np.rint(pixels).astype(np.uint8), mode="L").save(out / f"{i:04d}.png")
        camera = "night" if night[i] else "day"
        rows.append((f"{i:04d}.png", file.parent.name, split[i], camera))
    manifest = out / "digits.csv"
    with manifest.open("w", newline="") as fh:
        csv.writer(fh).writerows([("path", "label", "split", "camera"), *rows])
    counts = {s: int((night & (split == s)).sum()) for s in ("train", "val")}
    return manifest, counts


def train(folder: Path, manifest: Path, epochs: int) -> Path:
    from mlcycle.commands.train import main as train_main

    config = yaml.safe_load(Path("configs/quickstart.yaml").read_text())
    config.pop("objective", None)
    config["trainer"].update(max_epochs=epochs, accelerator="cpu", precision="32")
    config["data"]["init_args"].update(
        source="csv", manifest=str(manifest), root=None, test_fraction=0.0
    )
    path = folder / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    run = folder / "run"
    args = ["--config", str(path), f"--run_dir={run}", "--trainer.enable_progress_bar=false"]
    with contextlib.redirect_stdout(io.StringIO()):
        train_main(args)
    return run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--dim", type=float, default=0.2, help="night pixels are multiplied by this")
    p.add_argument("--train-night", type=float, default=0.03)
    p.add_argument("--val-night", type=float, default=0.3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("/tmp/slices_dark"))
    args = p.parse_args()
    if args.out.exists() and any(args.out.iterdir()):
        raise SystemExit(f"{args.out} is not empty; pass a fresh --out")
    started = time.perf_counter()
    manifest, night = dark_digits(args.out, args.dim, args.train_night, args.val_night, args.seed)
    print(f"night images (x{args.dim:g}): {night['train']} in train, {night['val']} in val")
    run = train(args.out, manifest, args.epochs)
    trained = time.perf_counter()

    from mlcycle.commands.evaluate import main as evaluate

    with contextlib.redirect_stdout(io.StringIO()) as printed:
        result = evaluate(["--run", str(run)])
    evaluated = time.perf_counter()
    report = json.loads((run / "slices_val" / "slices.json").read_text())
    whole = report["whole"]
    print(f"baseline, one score:  whole val f1 {whole['metric']:.4f} [{whole['low']:.4f}, {whole['high']:.4f}] on {whole['n']} images")  # fmt: skip
    print(f"{'slice':<34} {'n':>5} {'f1':>7} {'95% interval':>17}  status")
    for s in report["slices"]:
        shown = f"[{s['low']:.3f}, {s['high']:.3f}]" if s["low"] is not None else "-"
        print(f"{s['column'] + '=' + s['value']:<34} {s['n']:>5} {s['metric']:>7.4f} {shown:>17}  {s['status']}")  # fmt: skip
    for line in printed.getvalue().splitlines():
        if line.strip().startswith("slice"):
            print(line)
    flagged = set(result["slices"]["flagged"])
    darkest = next(s for s in report["slices"] if s["column"] == "brightness")
    found = {"camera=night", f"brightness={darkest['value']}"} <= flagged
    print(
        f"dark slice flagged: {'yes' if found else 'NO'} (camera=night and the darkest brightness "
        f"bin {darkest['value']}); train {trained - started:.0f}s, evaluate with slices "
        f"{evaluated - trained:.1f}s; {run / 'slices_val'}"
    )
    if not found:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
