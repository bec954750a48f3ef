"""The table tasks' part of the model card (``mlcycle.card.parts``): the model as its estimator
or MLP, the data as rows and named columns, the export's check on val rows, and the confusion
matrix of a table classifier among the figures of errors. Registered through the
``mlcycle.card_parts`` entry points."""

from __future__ import annotations

from collections import Counter
from typing import Any

from mlcycle.card.facts import Facts
from mlcycle.card.parts import CardPart

ROWS = {"images": "rows", "skipped files": "skipped rows"}  # the images' words, a table's
MLP = ("hidden", "hidden_sizes", "layers", "dropout", "lr", "epochs")


class TableCard(CardPart):
    error_figures = ("confusion_matrix", "reliability")
    captions = {
        "confusion_matrix": "Confusion matrix (rows true, columns predicted)",
        "reliability": "Reliability diagram: accuracy against confidence in 15 bins (ECE)",
    }
    checks = ("max_abs_prob_diff", "max_relative_diff", "macro_f1", "rmse")

    def model_rows(self, facts: Facts, rows: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
        """The estimator and its parameters (a classic or boosted model), or the MLP's keys."""
        init = facts.run.config["model"].get("init_args") or {}
        if init.get("estimator"):
            model = f"{init['estimator']} {init.get('params') or {}}"
            drop = ("architecture", "optimizer")
        else:
            model = ", ".join(f"{k} {init[k]}" for k in MLP if init.get(k) is not None) or "MLP"
            drop = ("architecture",)
        found = [(k, v) for k, v in rows if k not in drop]
        return [found[0], ("model", model), *found[1:]]

    def data_rows(self, facts: Facts, rows: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
        """The table's file, target and feature columns by kind; rows, not images."""
        info = facts.run.data_info
        kinds = Counter((info.get("input_columns") or {}).values())
        columns = ", ".join(f"{n} {k}" for k, n in kinds.items())
        found = [(ROWS.get(k, k), v) for k, v in rows if k not in ("input", "layout")]
        found[0] = ("source", info.get("where") or found[0][1])
        return [
            *found,
            ("target", f"{info.get('target')} ({info.get('task')})"),
            ("feature columns", f"{sum(kinds.values())}: {columns}"),
        ]

    def verified(self, report: dict[str, Any]) -> tuple[list[dict[str, Any]], Any, str]:
        """The one ONNX file (pipeline and model), checked on the val rows."""
        found = report.get("onnx")
        artifacts = [{"precision": "fp32", **found}] if found else []
        return artifacts, report.get("rows"), "rows"
