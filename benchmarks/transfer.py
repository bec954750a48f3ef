#!/usr/bin/env python
"""What starting from an earlier run buys on a few images: scratch vs init_from vs a probe.

    python benchmarks/transfer.py [--per_class 5] [--epochs 30] [--out DIR]

The built-in digits (mlcycle's writer, into a temporary folder or ``--out``; data/ is never
written), each scattered at a random place and scale on a noisy 32-pixel canvas, are cut in
two: a small CNN is pretrained on the digits 0-4 (all their images). The digits 5-9 are the
new task, with ``--per_class`` training images per class, as many for validation, and every
other image (about 170 per class) as the test split. Side by side, on the same split and with
the same settings (epochs, batch size, learning rate):

  (a) scratch:    the same CNN from random weights;
  (b) init_from:  started from the pretrain run (a new head for the new classes), the
                  backbone frozen for the first ``--freeze_epochs`` epochs;
  (c) probe:      a logistic regression on the pretrain run's embeddings (compare.py's
                  ``features: run:<dir>`` code path);
  and, for reference, the same logistic regression on the raw pixels.

Prints val and test macro F1 and the wall time of each, then the gains over scratch. Target:
the whole benchmark under 5 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
import warnings
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from sklearn.metrics import f1_score

from mlcycle.data.digits import write_digits
from mlcycle.images.selection.backbone import run_backbone
from mlcycle.images.selection.deep import predict_rows
from mlcycle.run.loader import Run
from mlcycle.selection.compare.classic import build_estimator, probabilities
from mlcycle.selection.compare.spec import Candidate
from mlcycle.training.fit import fit

PRETRAIN, NEW = ("0", "1", "2", "3", "4"), ("5", "6", "7", "8", "9")


def scattered(image: np.ndarray, canvas: int, rng: np.random.Generator) -> np.ndarray:
    """An 8x8 digit scaled to 10-18 pixels at a random place of a noisy ``canvas``-pixel
    square: a task a few images cannot teach from scratch, features learned on others can."""
    side = int(rng.integers(10, 19))
    digit = np.asarray(Image.fromarray(image).resize((side, side), Image.BILINEAR), float)
    out = rng.normal(40, 25, (canvas, canvas))
    y, x = rng.integers(0, canvas - side + 1, size=2)
    out[y : y + side, x : x + side] = np.maximum(out[y : y + side, x : x + side], digit)
    return np.clip(out, 0, 255).astype(np.uint8)


def write_parts(root: Path, per_class: int, canvas: int) -> tuple[Path, Path, Path]:
    """digits 0-4 and 5-9 as two image folders (each digit scattered on a noisy canvas), and
    the split file of the new task."""
    digits = write_digits(root / "digits")
    rng = np.random.default_rng(0)
    for part, classes in {"pretrain": PRETRAIN, "new": NEW}.items():
        for name in classes:
            (root / part / name).mkdir(parents=True)
            for file in sorted((digits / name).glob("*.png")):
                image = np.asarray(Image.open(file))
                Image.fromarray(scattered(image, canvas, rng)).save(root / part / name / file.name)
    with (root / "new_splits.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(("path", "label", "split"))
        for name in NEW:
            files = sorted(p.name for p in (root / "new" / name).glob("*.png"))
            order = rng.permutation(len(files))
            for rank, i in enumerate(order):
                split = "train" if rank < per_class else "val" if rank < 2 * per_class else "test"
                writer.writerow((str(root / "new" / name / files[i]), name, split))
    return root / "pretrain", root / "new", root / "new_splits.csv"


def train(run_dir: Path, root: Path, epochs: int, size: int, *extra: str) -> float:
    """A quick-start run on the image folder ``root``; its wall seconds."""
    args = [
        "--config=configs/quickstart.yaml",
        f"--data.image_size={size}",
        "--data.source=folder",
        f"--data.root={root}",
        f"--trainer.max_epochs={epochs}",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--run_dir={run_dir}",
        *extra,
    ]
    clock = time.perf_counter()
    with redirect_stdout(StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit(args)
    return time.perf_counter() - clock


def rows_of(data: Any) -> tuple[dict[str, int], dict[str, np.ndarray], np.ndarray]:
    """Every image's row, the rows of each split, and the class index of every row."""
    index = data.index
    paths = [files[0][0] for files in index.files]
    lookup = {name: i for i, name in enumerate(index.class_names)}
    target = np.array([lookup[s.label] for s in index.samples])
    splits = {s: np.array(index.positions[s]) for s in ("train", "val", "test")}
    return {p: i for i, p in enumerate(paths)}, splits, target


def macro_f1(target: np.ndarray, rows: np.ndarray, probs: np.ndarray) -> float:
    return float(f1_score(target[rows], probs.argmax(1), average="macro"))


def deep_scores(run_dir: Path) -> dict[str, float]:
    run = Run(run_dir)
    model, data = run.load_model("best"), run.load_data()
    data.setup("fit")
    rows, _, target = rows_of(data)
    scores = {}
    for split in ("val", "test"):
        found, probs = predict_rows(model, data, split, rows)
        scores[split] = macro_f1(target, found, probs)
    return scores


def classic_scores(pretrain: Path, new_run: Path, embed: bool) -> tuple[dict[str, float], float]:
    """A logistic regression on the new task's train images (the pretrain run's embeddings,
    or the pixels); its scores and wall seconds (embedding included)."""
    clock = time.perf_counter()
    data = Run(new_run).load_data()
    rows, splits, target = rows_of(data)
    images = np.stack([data.raw_image(p) for p in range(len(rows))])
    source = Candidate("probe", "classic", features=f"run:{pretrain}")
    if embed:
        features = run_backbone(source).embed(images)
    else:
        features = images.reshape(len(images), -1).astype(np.float32) / 255.0
    model = build_estimator(
        Candidate("logistic", "classic", estimator="sklearn.linear_model.LogisticRegression"), 0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(features[splits["train"]], target[splits["train"]])
    classes = len(data.index.class_names)
    scores = {
        split: macro_f1(
            target, splits[split], probabilities(model, features[splits[split]], classes)
        )
        for split in ("val", "test")
    }
    return scores, time.perf_counter() - clock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per_class", type=int, default=5, help="training images per class")
    parser.add_argument("--epochs", type=int, default=30, help="epochs of each fine-tune run")
    parser.add_argument("--pretrain_epochs", type=int, default=12)
    parser.add_argument("--freeze_epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=0.003, help="of both new-task runs")
    parser.add_argument("--batch_size", type=int, default=5, help="of both new-task runs")
    parser.add_argument("--canvas", type=int, default=32, help="image side, in pixels")
    parser.add_argument("--out", help="keep the data and runs here (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out else Path(tmp)
        if args.out and out.exists():
            parser.error(f"--out {out} exists; the benchmark measures fresh runs")
        total = time.perf_counter()
        pre_data, new_data, splits = write_parts(out, args.per_class, args.canvas)
        pre_s = train(out / "pretrain_run", pre_data, args.pretrain_epochs, args.canvas)
        few = [f"--data.split_file={splits}", f"--data.batch_size={args.batch_size}"]
        few.append(f"--model.lr={args.lr}")
        results = {}
        seconds = train(out / "scratch", new_data, args.epochs, args.canvas, *few)
        results["(a) scratch"] = (deep_scores(out / "scratch"), seconds)
        seconds = train(
            out / "init_from",
            new_data,
            args.epochs,
            args.canvas,
            *few,
            f"--model.init_from={out / 'pretrain_run'}",
            f"--model.freeze_epochs={args.freeze_epochs}",
        )
        results["(b) init_from + freeze"] = (deep_scores(out / "init_from"), seconds)
        results["(c) probe (logistic)"] = classic_scores(
            out / "pretrain_run", out / "scratch", True
        )
        results["    pixels (logistic)"] = classic_scores(
            out / "pretrain_run", out / "scratch", False
        )
        report(results, args, pre_s, time.perf_counter() - total)


def report(results: dict[str, Any], args: argparse.Namespace, pre_s: float, total: float) -> None:
    n = args.per_class
    print(
        f"pretrain: small_cnn on digits 0-4 (all images), {args.pretrain_epochs} epochs, "
        f"{pre_s:.1f} s"
    )
    print(f"new task: digits 5-9, {n} train + {n} val images per class, the rest is test")
    print(f"{'method':<26}{'val F1':>8}{'test F1':>9}{'wall s':>8}")
    for name, (scores, seconds) in results.items():
        print(f"{name:<26}{scores['val']:8.4f}{scores['test']:9.4f}{seconds:8.1f}")
    base = results["(a) scratch"][0]["test"]
    for name in ("(b) init_from + freeze", "(c) probe (logistic)"):
        test = results[name][0]["test"]
        print(
            f"{name.split(' ', 1)[1]}: test F1 {test - base:+.4f} over scratch, "
            f"error rate x{(1 - test) / max(1 - base, 1e-9):.2f}"
        )
    print(f"whole benchmark {total:.0f} s (target < 300 s on 2 cores)")


if __name__ == "__main__":
    main()
