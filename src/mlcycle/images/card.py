"""The image tasks' parts of the model card (``mlcycle.card.parts``): their metrics, figures of
errors and export checks, and for classification the intervals of accuracy and macro F1 and
the images per class. Registered through the ``mlcycle.card_parts`` entry points."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from mlcycle.card import stats
from mlcycle.card.facts import Facts, SplitResult, recompute_blocker
from mlcycle.card.parts import CardPart
from mlcycle.core.errors import UserError

RELIABILITY = "Reliability diagram: accuracy against confidence in 15 bins (ECE, evaluate.py)"


class ClassificationCard(CardPart):
    """Accuracy with a Wilson interval, macro F1 with a bootstrap interval over images (from
    the best checkpoint's recomputed predictions), and the images of each class per split."""

    metric_keys = ("acc", "f1", "precision", "recall", "loss", "ece")
    error_figures = ("confusion_matrix", "misclassified", "reliability")
    captions = {
        "confusion_matrix": "Confusion matrix (rows true, columns predicted)",
        "misclassified": "Most confident mistakes",
        "reliability": RELIABILITY,
    }
    checks = ("max_abs_logit_diff", "top1_agreement", "macro_f1_change", "accuracy_change")

    def intervals(self, facts: Facts, result: SplitResult, predict: bool, resamples: int) -> None:
        """Wilson for accuracy; the macro-F1 bootstrap from recomputed per-image predictions."""
        n, acc = result.images, result.metrics.get("acc")
        if n and isinstance(acc, float):
            result.intervals["acc"] = stats.wilson(round(acc * n), n)
            result.notes.append(f"accuracy: 95% Wilson score interval over {n} images")
        why_not, out = recompute_blocker(facts, result, predict), None
        if why_not is None:
            try:
                out = predictions(facts.run, result.split)
            except (
                UserError
            ) as exc:  # e.g. the data is not on this machine: the card still gets written
                why_not = f"predictions could not be recomputed: {exc}"
        if out is None:
            result.notes.append(f"macro F1: no interval ({why_not})")
            return
        names = list(facts.run.data_info.get("class_names") or [])
        result.intervals["f1"] = stats.bootstrap_macro_f1(
            out["pred"], out["target"], len(names), resamples
        )
        point = float(stats.macro_f1(out["pred"], out["target"], len(names))[0])
        result.notes.append(
            f"macro F1: 95% percentile bootstrap over images ({resamples} resamples of the "
            f"{len(out['target'])} per-image predictions of checkpoints/best.ckpt, recomputed; "
            f"macro F1 of those predictions {point:.4f})"
        )
        if result.per_class is None or not all("precision" in r for r in result.per_class.values()):
            result.per_class = stats.per_class_rows(out["pred"], out["target"], names)

    def data_table(self, facts: Facts) -> dict[str, Any] | None:
        """Images per class and split, from ``splits.csv``'s label column."""
        if not (facts.run.path / "splits.csv").is_file():
            return None
        names, per = class_counts(facts.run.path)
        rows = [(n, per[n]["train"], per[n]["val"], per[n]["test"]) for n in names]
        return {"header": ("class", "train", "val", "test"), "rows": rows}


class SegmentationCard(CardPart):
    error_figures = ("worst_iou",)
    captions = {"worst_iou": "Worst IoU images"}
    checks = ("max_abs_logit_diff", "pixel_agreement", "miou_change")


class DetectionCard(CardPart):
    error_figures = ("detection_errors",)
    captions = {"detection_errors": "Detection errors"}
    checks = ("max_box_diff", "max_score_diff", "map_change")


def class_counts(run_path: Path) -> tuple[list[str], dict[str, Counter]]:
    """Images per class and split from ``splits.csv`` (classification's label column)."""
    counts: dict[str, Counter] = {}
    with (run_path / "splits.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            counts.setdefault(row.get("label", ""), Counter())[row["split"]] += 1
    return sorted(counts), counts


def predictions(run: Any, split: str) -> dict[str, np.ndarray]:
    """Per-image predicted and true classes of ``run``'s best checkpoint on ``split``,
    recomputed with the evaluator's own ``collect``."""
    from mlcycle.evaluators.classification import collect

    model = run.load_model("best")
    out = collect(model, run.load_data(num_workers=0), split)
    return {"pred": out["probs"].argmax(1).numpy(), "target": out["target"].numpy()}
