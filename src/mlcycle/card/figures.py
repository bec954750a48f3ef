"""The model card's figure sections: the figures of errors the task names (confusion matrices,
galleries), and the learning curves with the fit's diagnosis; the run's PNG files, inline."""

from __future__ import annotations

from mlcycle.card.facts import Facts
from mlcycle.card.html import Section, section

CURVE_FIGURES = {
    "loss_curves.png": "Learning curves: train and val per epoch",
    "lr_finder.png": "Learning-rate finder",
}


def errors(facts: Facts) -> Section:
    """The run's figures of errors (the task's part names them), val before test."""
    path, part = facts.run.path, facts.part
    found = sorted(
        (
            p
            for p in path.glob("*.png")
            if part.error_figures and p.name.startswith(part.error_figures)
        ),
        key=lambda p: (
            p.stem.removesuffix("_val").removesuffix("_test"),
            p.stem.endswith("_test"),
        ),
    )
    # evaluate.py's val figures supersede training's of the same checkpoint
    found = [p for p in found if not (path / f"{p.stem}_val.png").is_file()]
    shown = [(p, _caption(p.stem, part.captions)) for p in found]
    return section("errors", "Confusion matrix and errors", figures=shown)


def curves(facts: Facts) -> Section:
    """The learning curves (and the learning-rate finder's), and the fit's diagnosis."""
    path = facts.run.path
    shown = [(path / n, c) for n, c in CURVE_FIGURES.items() if (path / n).is_file()]
    findings = [
        f"{f['kind']} (epoch {f.get('epoch')}): {f['message']}"
        + (f"; next: {f['next_step']}" if f.get("next_step") else "")
        for f in facts.metrics.get("diagnosis") or []
    ]
    return section("curves", "Learning curves", figures=shown, findings=findings)


def _caption(stem: str, captions: dict[str, str]) -> str:
    base, _, split = stem.rpartition("_") if stem.endswith(("_val", "_test")) else (stem, "", "")
    what = captions.get(base, base)
    return f"{what}, {split} split" if split else f"{what}, val split at the best epoch"
