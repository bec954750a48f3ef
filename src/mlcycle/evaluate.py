"""``scripts/evaluate.py``: score a run's best checkpoint on its val or test split."""

from __future__ import annotations

import json
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from mlcycle.analysis import confusion_matrix, top_mistakes
from mlcycle.errors import ArgParser, main_guard
from mlcycle.plots import confusion_matrix_figure, save
from mlcycle.run_loader import Run, sha256
from mlcycle.run_record import write_json

LEDGER = "test_ledger.jsonl"


@torch.inference_mode()
def predict(model: torch.nn.Module, loader: Any, device: torch.device) -> dict[str, torch.Tensor]:
    model.to(device)
    parts: dict[str, list[torch.Tensor]] = {"probs": [], "target": [], "index": []}
    for x, y, index in tqdm(loader, desc="evaluating", unit="batch", leave=False):
        parts["probs"].append(model(x.to(device)).float().softmax(dim=1).cpu())
        parts["target"].append(y)
        parts["index"].append(index)
    return {k: torch.cat(v) for k, v in parts.items()}


def per_class(matrix: np.ndarray, names: list[str]) -> dict[str, dict[str, float]]:
    tp = np.diag(matrix).astype(float)
    support, predicted = matrix.sum(axis=1), matrix.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    f1 = np.divide(
        2 * precision * recall,
        precision + recall,
        out=np.zeros_like(tp),
        where=precision + recall > 0,
    )
    return {
        name: {
            "precision": round(p, 6),
            "recall": round(r, 6),
            "f1": round(f, 6),
            "support": int(s),
        }
        for name, p, r, f, s in zip(names, precision, recall, f1, support, strict=True)
    }


def overall(probs: torch.Tensor, target: torch.Tensor, num_classes: int) -> dict[str, float]:
    from mlcycle.tasks.classification import classification_metrics

    metrics = classification_metrics(num_classes)
    metrics.update(probs, target)
    values = {k: v for k, v in metrics.compute().items() if k != "f1_per_class"}
    result = {k: round(float(v), 6) for k, v in values.items()}
    result["loss"] = round(
        float(torch.nn.functional.nll_loss(probs.clamp_min(1e-12).log(), target)), 6
    )
    result["error"] = round(1 - result["acc"], 6)
    return result


def record_test_use(run_dir: Path, metrics: dict[str, float]) -> int:
    """Append this test evaluation to the ledger; return how many came before it."""
    ledger = run_dir / LEDGER
    before = len(ledger.read_text().splitlines()) if ledger.is_file() else 0
    entry = {
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "metrics": metrics,
    }
    with ledger.open("a") as fh:
        fh.write(json.dumps(entry) + "\n")
    return before


def evaluate(
    run_dir: str | Path, split: str = "val", which: str = "best", batch_size: int | None = None
) -> dict:
    from mlcycle.callbacks.misclassified import mistake_gallery

    run = Run(run_dir)
    checkpoint = run.checkpoint(which)
    model = run.load_model(which)
    overrides = {"batch_size": batch_size} if batch_size else {}
    data = run.load_data(num_workers=0, **overrides)
    names = list(model.class_names)
    loader = data.split_dataloader(split)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    out = predict(model, loader, device)
    matrix = confusion_matrix(out["probs"], out["target"], len(names))
    result = {
        "split": split,
        "checkpoint": str(checkpoint.relative_to(run.path)),
        "checkpoint_sha256": sha256(checkpoint),
        "images": int(len(out["target"])),
        "metrics": overall(out["probs"], out["target"], len(names)),
        "per_class": per_class(matrix, names),
        "confusion_matrix": matrix.tolist(),
        "class_names": names,
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if split == "test":
        result["test_evaluations_before"] = record_test_use(run.path, result["metrics"])
    write_json(run.path / f"eval_{split}.json", result)
    title = f"{split} confusion matrix ({which} checkpoint, f1 {result['metrics']['f1']:.4f})"
    save(confusion_matrix_figure(matrix, names, title), run.path / f"confusion_matrix_{split}.png")
    mistakes = top_mistakes(out["probs"], out["target"], out["index"], 24)
    title = f"most confident {split} mistakes ({len(mistakes)} shown, {int(matrix.sum() - np.trace(matrix))} in all)"
    save(mistake_gallery(data, mistakes, names, title), run.path / f"misclassified_{split}.png")
    return result


@main_guard
def main(argv: list[str] | None = None) -> dict:
    parser = ArgParser(
        prog="evaluate.py", description="Score a run's checkpoint on its val or test split."
    )
    parser.add_argument("--run", required=True, help="run directory written by train.py")
    parser.add_argument("--split", choices=("val", "test"), default="val")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best")
    parser.add_argument("--batch-size", type=int, default=None)
    args = parser.parse_args(argv)
    result = evaluate(args.run, args.split, args.checkpoint, args.batch_size)
    if args.split == "test" and result["test_evaluations_before"]:
        n = result["test_evaluations_before"] + 1
        print(
            f"warning: the test split of this run has now been evaluated {n} times; choosing models or "
            "settings by it turns it into a validation set, and its score stops estimating generalization",
            file=sys.stderr,
        )
    m = result["metrics"]
    print(
        f"{args.split}: {result['images']} images  acc {m['acc']:.4f}  f1 {m['f1']:.4f}  "
        f"precision {m['precision']:.4f}  recall {m['recall']:.4f}  loss {m['loss']:.4f}"
    )
    width = max(len(n) for n in result["per_class"])
    for name, row in result["per_class"].items():
        print(
            f"  {name:<{width}}  f1 {row['f1']:.4f}  precision {row['precision']:.4f}  "
            f"recall {row['recall']:.4f}  support {row['support']}"
        )
    print(f"wrote {Path(args.run) / f'eval_{args.split}.json'}")
    return result
