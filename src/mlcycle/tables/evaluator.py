"""``evaluate.py`` for table tasks (the MLP and the classic models): the training metrics on a
split, the per-class report or the residual plot, and the worst rows as a CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torchmetrics import MeanMetric

from mlcycle.evaluators import predict_split, register_evaluator
from mlcycle.reports.figures import save
from mlcycle.reports.mistakes import confusion_matrix
from mlcycle.reports.residuals import residual_figure
from mlcycle.tables.metrics import tabular_metrics
from mlcycle.tables.rows import worst_table

WORST_ROWS = 50


def collect(model: Any, data: Any, split: str) -> dict[str, Any]:
    """The split's metrics (the task's own), mean loss, and every row's scores, target and
    position, from the task's ``predict_step``."""
    num_classes = int(model.hparams.num_classes)
    metrics = tabular_metrics(model.kind, num_classes, per_class=True)
    loss = MeanMetric()
    parts: dict[str, list[torch.Tensor]] = {"scores": [], "target": [], "index": []}

    def consume(out: dict[str, torch.Tensor]) -> None:
        key = "pred" if model.regression else "probs"
        target = out["target"].float() if model.regression else out["target"].long()
        metrics.update(out[key], target)
        loss.update(model.score_loss(out), weight=len(target))
        for name, values in (("scores", out[key]), ("target", target), ("index", out["index"])):
            parts[name].append(values)

    predict_split(model, data, split, consume)
    out: dict[str, Any] = {k: torch.cat(v) for k, v in parts.items()}
    out["values"] = metrics.compute()
    out["loss"] = float(loss.compute())
    return out


def _classification(model: Any, out: dict[str, Any], split: str, run_dir: Path) -> dict[str, Any]:
    from mlcycle.evaluators.classification import summary

    names = list(model.class_names)
    matrix = confusion_matrix(out["scores"], out["target"], len(names))
    return summary({**out, "probs": out["scores"]}, matrix, names, split, run_dir)


def _regression(out: dict[str, Any], split: str, run_dir: Path) -> dict[str, Any]:
    metrics = {k: round(float(v), 6) for k, v in out["values"].items()}
    metrics["loss"] = round(out["loss"], 6)
    predicted, actual = out["scores"].numpy(), out["target"].numpy()
    title = f"{split}: rmse {metrics['rmse']:.4g}, mae {metrics['mae']:.4g}, r2 {metrics['r2']:.4f}"
    save(residual_figure(predicted, actual, title), run_dir / f"residuals_{split}.png")
    return {"metrics": metrics}


@register_evaluator("tabular")
def evaluate_tabular(model: Any, data: Any, split: str, run_dir: Path) -> dict[str, Any]:
    out = collect(model, data, split)
    rows = int(len(out["target"]))
    if model.regression:
        result = _regression(out, split, run_dir)
    else:
        result = _classification(model, out, split, run_dir)
    table = worst_table(
        data,
        split,
        out["scores"].numpy(),
        out["target"].numpy(),
        out["index"].numpy(),
        list(model.class_names),
        WORST_ROWS,
    )
    table.to_csv(run_dir / f"worst_predictions_{split}.csv", index=False)
    result["report_lines"] = [
        *result.get("report_lines", []),
        f"  worst {len(table)} rows: {run_dir / f'worst_predictions_{split}.csv'}",
    ]
    return {"images": rows, "rows": rows, **result}
