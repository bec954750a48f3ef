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

    def __init__(
        self,
        members: list[dict[str, Any]],
        weights: list[float],
        combination: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if len(weights) != len(members):
            raise UserError(f"{len(members)} ensemble members but {len(weights)} weights")
        self._loaded: list[tuple[Any, Any]] | None = None

    def bags(self) -> list[list[str]]:
        """Every member's runs: one, or a shortlisted candidate's fold runs (averaged)."""
        return [list(m.get("runs") or [m["run"]]) for m in self.hparams.members]

    def loaded(self) -> list[tuple[Any, Any]]:
        """Every member run's (task, data module), in bag order, the data read and its
        pipeline refitted."""
        if self._loaded is None:
            from mlcycle.run.loader import Run

            found = []
            for path in (p for bag in self.bags() for p in bag):
                run = Run(path)
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
        """Every member's scores on raw rows (a bag's mean over its runs): (M, N, K)
        probabilities or (M, N, 1) predictions."""
        out = []
        for task, data in self.loaded():
            x = np.asarray(data.pipeline.transform(frame.reset_index(drop=True)), np.float32)
            with torch.no_grad():
                out.append(task.scores(torch.from_numpy(x)).float().numpy())
        sizes = np.cumsum([0, *(len(bag) for bag in self.bags())])
        runs = np.stack(out).astype(np.float64)
        return np.stack([runs[a:b].mean(axis=0) for a, b in zip(sizes, sizes[1:], strict=False)])

    def frame_scores(self, frame: pd.DataFrame) -> np.ndarray:
        """The ensemble's scores on raw rows (float32, as the graph gives them)."""
        from mlcycle.selection.ensemble import combine

        scores = self.member_scores(frame)
        stack = self.hparams.get("combination")
        if not stack:  # the weighted mean
            weights = np.asarray(self.hparams.weights, dtype=np.float64)
            return np.tensordot(weights, scores, axes=1).astype(np.float32)
        combination = combine.Combination(**stack)
        if self.regression:
            return combine.apply_values(combination, scores[..., 0])[:, None]
        return combine.apply(combination, scores)

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
        """One graph: every member run's exported table graph (pipeline + model) side by side
        on shared raw-column inputs, then the combination of their outputs (a bag averaged
        first); with model.json's ``input`` (the union of the members' columns and inputs)."""
        from mlcycle.tables import onnx_graph
        from mlcycle.tables.export import build_graph

        built = [build_graph(task, data, opset) for task, data in self.loaded()]
        models = [model for model, _ in built]
        onnx_graph._align(models)
        final = models[0].graph.output[0].name  # probabilities / prediction, as one member
        parts = Parts()
        sizes = np.cumsum([0, *(len(bag) for bag in self.bags())])
        for m, (a, b) in enumerate(zip(sizes, sizes[1:], strict=False)):
            outputs = [parts.add(models[i], f"m{m}r{i - a}/") for i in range(a, b)]
            parts.mean(outputs, f"m{m}/scores")
        stack = self.hparams.get("combination")
        members = [f"m{m}/scores" for m in range(len(sizes) - 1)]
        if stack:
            parts.stack(members, stack, final, softmax=not self.regression)
        else:
            weighted = [
                parts.scale(name, w) for name, w in zip(members, self.hparams.weights, strict=True)
            ]
            parts.nodes.append(helper.make_node("Sum", weighted, [final], name="ensemble_sum"))
        graph = helper.make_graph(
            parts.nodes, "table_ensemble", list(parts.inputs.values()),
            [models[0].graph.output[0]], parts.inits,
        )  # fmt: skip
        graph.value_info.extend(parts.values)
        domains: dict[str, int] = {}
        for model in models:
            for entry in model.opset_import:
                domains[entry.domain] = max(domains.get(entry.domain, 0), entry.version)
        opsets = [helper.make_opsetid(d, v) for d, v in sorted(domains.items())]
        joined = helper.make_model(graph, opset_imports=opsets, ir_version=models[0].ir_version)
        onnx.checker.check_model(joined)
        return joined, union_spec([spec for _, spec in built])


class Parts:
    """The nodes, initializers and shared inputs of the ensemble's graph as it is built."""

    def __init__(self) -> None:
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.values: list[Any] = []
        self.inputs: dict[str, Any] = {}

    def add(self, model: onnx.ModelProto, prefix: str) -> str:
        """A member run's graph, prefixed, on the shared inputs; its output's name."""
        graph = onnx.compose.add_prefix(model, prefix, rename_inputs=False).graph
        for entry in graph.input:
            known = self.inputs.setdefault(entry.name, entry)
            if known.type != entry.type:
                raise UserError(f"ensemble members read column input '{entry.name}' as "
                                "different types; they cannot share one graph")  # fmt: skip
        self.nodes.extend(graph.node)
        self.inits.extend(graph.initializer)
        self.values.extend(graph.value_info)
        return graph.output[0].name

    def constant(self, name: str, values: Any, dims: list[int]) -> str:
        flat = np.asarray(values, dtype=np.float32).reshape(-1).tolist()
        self.inits.append(helper.make_tensor(name, TensorProto.FLOAT, dims, flat))
        return name

    def scale(self, name: str, weight: float) -> str:
        factor = self.constant(f"{name}/weight", [weight], [])
        self.nodes.append(helper.make_node("Mul", [name, factor], [f"{name}/weighted"]))
        return f"{name}/weighted"

    def mean(self, names: list[str], out: str) -> None:
        """The mean of a bag's outputs (one run: itself)."""
        if len(names) == 1:
            self.nodes.append(helper.make_node("Identity", names, [out]))
            return
        self.nodes.append(helper.make_node("Sum", names, [f"{out}/sum"]))
        self.nodes.append(helper.make_node("Mul", [f"{out}/sum", self.constant(
            f"{out}/share", [1.0 / len(names)], [])], [out]))  # fmt: skip

    def stack(self, members: list[str], stack: dict[str, Any], out: str, softmax: bool) -> None:
        """The stacking layer: the members' outputs side by side, times the (K, M*K)
        coefficients, plus the intercept (then a softmax for probabilities)."""
        coef = np.asarray(stack["coef"], dtype=np.float32)
        weight = self.constant("stack/coef", coef.T, list(coef.T.shape))
        bias = self.constant("stack/intercept", stack["intercept"], [coef.shape[0]])
        self.nodes.append(helper.make_node("Concat", members, ["stack/features"], axis=1))
        self.nodes.append(helper.make_node("MatMul", ["stack/features", weight], ["stack/z"]))
        logits = out if not softmax else "stack/logits"
        self.nodes.append(helper.make_node("Add", ["stack/z", bias], [logits]))
        if softmax:
            self.nodes.append(helper.make_node("Softmax", [logits], [out], axis=1))


def union_spec(specs: list[dict[str, Any]]) -> dict[str, Any]:
    """model.json's ``input`` of the ensemble: every member's columns and graph inputs once."""
    spec = dict(specs[0])
    for key in ("columns", "onnx_inputs"):
        seen: dict[str, dict[str, Any]] = {}
        for item in (i for s in specs for i in s[key]):
            seen.setdefault(item["name"], item)
        spec[key] = list(seen.values())
    return spec
