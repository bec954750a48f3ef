"""The model card's figure sections: confusion matrices and galleries of errors, and the
learning curves with the fit's diagnosis; the run's PNG files, inline."""

from __future__ import annotations

from mlcycle.reports.card_facts import Facts
from mlcycle.reports.card_html import bullets, figure
from mlcycle.reports.card_sections import Section

ERROR_FIGURES = ("confusion_matrix", "misclassified", "worst_iou", "detection_errors")
CURVE_FIGURES = {
    "loss_curves.png": "Learning curves: train and val per epoch",
    "lr_finder.png": "Learning-rate finder",
}


def figures(facts: Facts, kind: str) -> Section:
    path = facts.run.path
    if kind == "errors":
        found = sorted(
            (p for p in path.glob("*.png") if p.name.startswith(ERROR_FIGURES)),
            key=lambda p: (
                p.stem.removesuffix("_val").removesuffix("_test"),
                p.stem.endswith("_test"),
            ),
        )
        # evaluate.py's val figures supersede training's of the same checkpoint
        found = [p for p in found if not (path / f"{p.stem}_val.png").is_file()]
        body = "".join(figure(p, _caption(p.stem)) for p in found)
        return ("errors", "Confusion matrix and errors", body or "<p>No figures in the run.</p>")
    body = "".join(figure(path / n, c) for n, c in CURVE_FIGURES.items() if (path / n).is_file())
    findings = [
        f"{f['kind']} (epoch {f.get('epoch')}): {f['message']}"
        + (f"; next: {f['next_step']}" if f.get("next_step") else "")
        for f in facts.metrics.get("diagnosis") or []
    ]
    body += "<p>Diagnosis of the fit:</p>" + bullets(findings)
    return ("curves", "Learning curves", body)


def _caption(stem: str) -> str:
    base, _, split = stem.rpartition("_") if stem.endswith(("_val", "_test")) else (stem, "", "")
    what = {
        "confusion_matrix": "Confusion matrix (rows true, columns predicted)",
        "misclassified": "Most confident mistakes",
        "worst_iou": "Worst IoU images",
        "detection_errors": "Detection errors",
    }.get(base, base)
    return f"{what}, {split} split" if split else f"{what}, val split at the best epoch"
