#!/usr/bin/env python
"""Planted label noise on the bundled digits: does label-issues find it, and does relabelling
help?

    python benchmarks/label_noise.py [--flip 0.08] [--epochs 4] [--out /tmp/label_noise]

The digits are written to a fresh folder with a manifest (``path,label,split``): 20% are a
held-out test split with their true labels; ``--flip`` of the others (train+val) get another
class at random. ``mlcycle compare`` (a classic logistic regression on the pixels, 5 folds)
gives out-of-fold probabilities; ``mlcycle label-issues`` ranks them. Reported: precision and
recall of the ranking at k = the number flipped, then a small CNN (train.py) trained on the
noisy labels against the same CNN trained with ``data.relabel`` made of label-issues'
suggestions (every line it calls a label issue, its suggested label), both scored by macro F1
on the same clean test images; the same for a logistic regression on the pixels of the data
module's images (its labels as data.relabel leaves them). ``--epochs 0``: no CNN (about a
minute instead of several).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml


def noisy_digits(folder: Path, flip: float, seed: int) -> tuple[Path, set[str]]:
    """The digits under ``folder/digits`` and ``noisy.csv`` beside them; the flipped paths."""
    from mlcycle.data.digits import write_digits

    root = write_digits(folder / "digits")
    files = sorted(root.glob("*/*.png"))
    rng = np.random.default_rng(seed)
    split = rng.choice(["train", "val", "test"], len(files), p=[0.68, 0.12, 0.20])
    pool = np.flatnonzero(split != "test")
    flipped = set(rng.choice(pool, round(flip * len(pool)), replace=False).tolist())
    rows, planted = [], set()
    for i, file in enumerate(files):
        label = int(file.parent.name)
        if i in flipped:
            label = int((label + rng.integers(1, 10)) % 10)
            planted.add(str(file.resolve()))
        rows.append((file.relative_to(root).as_posix(), label, split[i]))
    manifest = root / "noisy.csv"
    with manifest.open("w", newline="") as fh:
        csv.writer(fh).writerows([("path", "label", "split"), *rows])
    return manifest, planted


def base_config(folder: Path, manifest: Path, epochs: int) -> Path:
    config = yaml.safe_load(Path("configs/quickstart.yaml").read_text())
    config.pop("objective", None)
    config["trainer"].update(max_epochs=epochs, accelerator="cpu", precision="32")
    config["data"]["init_args"].update(source="csv", manifest=str(manifest), root=None)
    path = folder / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def rank_issues(folder: Path, train: Path) -> pd.DataFrame:
    from mlcycle.commands.compare import main as compare
    from mlcycle.commands.label_issues import main as label_issues

    spec = {
        "train": [str(train)],
        "folds": 5,
        "classic_size": 8,
        "candidates": [
            {"name": "logistic", "estimator": "sklearn.linear_model.LogisticRegression",
             "params": {"C": 0.1, "max_iter": 500}},
        ],
    }  # fmt: skip
    (folder / "cmp.yaml").write_text(yaml.safe_dump(spec))
    with contextlib.redirect_stdout(io.StringIO()):
        compare(["--config", str(folder / "cmp.yaml"), "--out", str(folder / "compare")])
    return pd.read_csv(label_issues([str(folder / "compare")]))


def test_f1(train: Path, out: Path, relabel: Path | None) -> float:
    import mlcycle

    overrides = {"run_dir": str(out), "trainer.enable_progress_bar": False}
    if relabel is not None:
        overrides["data.relabel"] = str(relabel)
    with contextlib.redirect_stdout(io.StringIO()):
        run = mlcycle.train(str(train), **overrides)
        result = run.evaluate("test")
    return float(result["metrics"]["f1"])


def logistic_f1(train: Path, relabel: Path | None) -> float:
    """A logistic regression on the 8x8 pixels of the data module's train+val images, with
    the labels the data module holds (``data.relabel`` applied), macro F1 on the test split."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    from mlcycle.selection.config import build_data

    config = yaml.safe_load(train.read_text())
    init = config["data"]["init_args"]
    init.update(relabel=str(relabel) if relabel else None, image_size=8)
    with contextlib.redirect_stdout(io.StringIO()):
        data = build_data(config)
        index = data.index

    def split(names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        at = [p for s in names for p in index.positions[s]]
        x = np.stack([data.raw_image(p).ravel() / 255.0 for p in at])
        return x, np.asarray([index.samples[p].label for p in at])

    x, y = split(("train", "val"))
    x_test, y_test = split(("test",))
    model = LogisticRegression(C=0.1, max_iter=1000).fit(x, y)
    return float(f1_score(y_test, model.predict(x_test), average="macro"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flip", type=float, default=0.08)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("/tmp/label_noise"))
    args = parser.parse_args()
    folder = args.out / time.strftime("%Y%m%d-%H%M%S")
    folder.mkdir(parents=True)
    clock = time.perf_counter()
    manifest, planted = noisy_digits(folder, args.flip, args.seed)
    train = base_config(folder, manifest, args.epochs)
    found = rank_issues(folder, train)
    labelled = found[found.reason.str.contains("label issue")]
    k = len(planted)
    top = set(labelled.path.head(k))
    hits = len(top & planted)
    print(f"\nplanted {k} flips ({args.flip:.0%} of train+val); label-issues called "
          f"{len(labelled)} label issues ({time.perf_counter() - clock:.0f}s)")  # fmt: skip
    print(f"precision@{k} {hits / max(1, len(top)):.3f}   recall@{k} {hits / k:.3f}")
    fixed = labelled.assign(label=labelled.suggested)[["path", "label"]]
    relabel = folder / "relabel.csv"
    fixed.to_csv(relabel, index=False)
    right = sum(int(Path(p).parent.name) == int(lab) for p, lab in fixed.itertuples(index=False))
    print(f"relabel.csv: {len(fixed)} lines, {right} of them the true class")
    noisy, clean = logistic_f1(train, None), logistic_f1(train, relabel)
    print("logistic regression on the pixels, macro F1 on the clean test split:")
    print(f"  noisy labels   {noisy:.4f}")
    print(f"  data.relabel   {clean:.4f}   ({clean - noisy:+.4f})")
    if args.epochs <= 0:
        return
    noisy = test_f1(train, folder / "runs_noisy", None)
    clean = test_f1(train, folder / "runs_relabelled", relabel)
    print(f"small_cnn, {args.epochs} epochs, macro F1 on the clean test split:")
    print(f"  noisy labels   {noisy:.4f}")
    print(f"  data.relabel   {clean:.4f}   ({clean - noisy:+.4f})")
    print(f"total {time.perf_counter() - clock:.0f}s; files in {folder}")


if __name__ == "__main__":
    main()
