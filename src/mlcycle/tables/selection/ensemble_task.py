"""An ensemble of table runs as a table task: each member keeps its own fitted pipeline.

:class:`TableEnsembleTask` is a table task to the rest of mlcycle (``task_name`` ``tabular``):
``Run`` loads it from ``checkpoints/best.ckpt``, evaluate.py scores it with the table evaluator
through ``predict_step``, and export.py writes it as ONE ``model.onnx`` taking the raw columns
(:meth:`TableEnsembleTask.ensemble_graph`, verified like any table export). Members may use
different pipelines (one-hot for a linear model, codes for the MLP), so the ensemble scores
raw rows: a batch's row positions pick the raw rows, and every member transforms them itself.

The members are copies of their run directories under the ensemble's ``members/`` (written by
``ensemble.py``), loaded on first use.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np
import onnx
import pandas as pd
import torch
from onnx import TensorProto, helper

from mlcycle.core.errors import UserError
from mlcycle.tables.task import TableTask


class TableEnsembleTask(TableTask):
    """The (weighted) mean of table runs' probabilities (classification) or predictions
    (regression) on the same raw rows, built by ``ensemble.py`` (never trained).

    Args:
        members: one dict per member: ``name`` and ``run`` (its copied run directory).
        weights: one per member, >= 0, summing to 1.
    """

    network = "ensemble"

    def __init__(self, members: list[dict[str, Any]], weights: list[float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if len(weights) != len(members):
            raise UserError(f"{len(members)} ensemble members but {len(weights)} weights")
        self._loaded: list[tuple[Any, Any]] | None = None

    def loaded(self) -> list[tuple[Any, Any]]:
        """Every member's (task, data module), the data read and its pipeline refitted."""
        if self._loaded is None:
            from mlcycle.run.loader import Run

            found = []
            for member in self.hparams.members:
                run = Run(member["run"])
                data = run.load_data(num_workers=0)
                with contextlib.redirect_stdout(io.StringIO()):  # each member's table line
                    data.setup()
                found.append((run.load_model("best"), data))
            self._loaded = found
        return self._loaded

    def rows(self, positions: np.ndarray) -> pd.DataFrame:
        """Raw rows by position in the table (every member read the same rows)."""
        frame = self.loaded()[0][1].table.frame
        return frame.iloc[positions].reset_index(drop=True)

    def member_scores(self, frame: pd.DataFrame) -> np.ndarray:
        """Every member's scores on raw rows: (M, N, K) probabilities or (M, N) predictions."""
        out = []
        for task, data in self.loaded():
            x = np.asarray(data.pipeline.transform(frame.reset_index(drop=True)), np.float32)
            with torch.no_grad():
                out.append(task.scores(torch.from_numpy(x)).float().numpy())
        return np.stack(out)

    def frame_scores(self, frame: pd.DataFrame) -> np.ndarray:
        """The ensemble's scores on raw rows (float32, as the graph gives them)."""
        weights = np.asarray(self.hparams.weights, dtype=np.float64)
        scores = self.member_scores(frame).astype(np.float64)
        return np.tensordot(weights, scores, axes=1).astype(np.float32)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        raise UserError("a table ensemble scores raw rows (frame_scores), not one feature matrix")

    def outputs(self, batch: Any) -> dict[str, torch.Tensor]:
        _, y, index = batch
        scores = torch.from_numpy(self.frame_scores(self.rows(index.cpu().numpy())))
        key = "pred" if self.regression else "probs"
        return {key: scores.to(y.device), "target": y, "index": index}

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        raise UserError("an ensemble is not trained; build it with scripts/ensemble.py")

    def configure_callbacks(self) -> list[Any]:
        return []

    def ensemble_graph(self, opset: int) -> tuple[onnx.ModelProto, dict[str, Any]]:
        """One graph: every member's exported table graph (pipeline + model) side by side on
        shared raw-column inputs, and the weighted sum of their outputs; with model.json's
        ``input`` (the union of the members' columns and inputs)."""
        from mlcycle.tables import onnx_graph
        from mlcycle.tables.export import build_graph

        built = [build_graph(task, data, opset) for task, data in self.loaded()]
        models = [model for model, _ in built]
        onnx_graph._align(models)
        final = models[0].graph.output[0].name  # probabilities / prediction, as one member
        nodes, inits, values, inputs, parts = [], [], [], {}, []
        for i, (model, weight) in enumerate(zip(models, self.hparams.weights, strict=True)):
            graph = onnx.compose.add_prefix(model, f"m{i}/", rename_inputs=False).graph
            for entry in graph.input:
                known = inputs.setdefault(entry.name, entry)
                if known.type != entry.type:
                    raise UserError(f"ensemble members read column input '{entry.name}' as "
                                    "different types; they cannot share one graph")  # fmt: skip
            nodes.extend(graph.node)
            inits.extend(graph.initializer)
            values.extend(graph.value_info)
            scale = f"m{i}/ensemble_weight"
            inits.append(helper.make_tensor(scale, TensorProto.FLOAT, [], [float(weight)]))
            nodes.append(helper.make_node("Mul", [graph.output[0].name, scale], [f"m{i}/weighted"]))
            parts.append(f"m{i}/weighted")
        nodes.append(helper.make_node("Sum", parts, [final], name="ensemble_sum"))
        graph = helper.make_graph(
            nodes, "table_ensemble", list(inputs.values()), [models[0].graph.output[0]], inits
        )
        graph.value_info.extend(values)
        domains: dict[str, int] = {}
        for model in models:
            for entry in model.opset_import:
                domains[entry.domain] = max(domains.get(entry.domain, 0), entry.version)
        opsets = [helper.make_opsetid(d, v) for d, v in sorted(domains.items())]
        joined = helper.make_model(graph, opset_imports=opsets, ir_version=models[0].ir_version)
        onnx.checker.check_model(joined)
        return joined, union_spec([spec for _, spec in built])


def union_spec(specs: list[dict[str, Any]]) -> dict[str, Any]:
    """model.json's ``input`` of the ensemble: every member's columns and graph inputs once."""
    spec = dict(specs[0])
    for key in ("columns", "onnx_inputs"):
        seen: dict[str, dict[str, Any]] = {}
        for item in (i for s in specs for i in s[key]):
            seen.setdefault(item["name"], item)
        spec[key] = list(seen.values())
    return spec
