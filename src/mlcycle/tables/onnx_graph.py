"""One ONNX graph from a table run: the fitted pipeline (:mod:`mlcycle.tables.onnx_pipeline`)
and the model (torch's exporter for the MLP, skl2onnx for a classic model, with the boosters'
converters of :mod:`mlcycle.tables.boosted` registered into it), joined on their
``features`` tensor with ``onnx.compose.merge_models``.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper
from torch import nn

from mlcycle.core.errors import UserError
from mlcycle.tables.onnx_pipeline import (
    FEATURES,
    ML,
    ML_OPSET,
    date_inputs,
    input_types,
    pipeline_graph,
    pre_step,
)

__all__ = [
    "FEATURES",
    "ML",
    "ML_OPSET",
    "Scores",
    "classic_graph",
    "date_inputs",
    "input_types",
    "join",
    "mlp_graph",
    "output_name",
    "pipeline_graph",
    "pre_step",
    "tempered",
]


class Scores(nn.Module):
    """The MLP as the export runs it: probabilities, or the prediction in target units."""

    def __init__(self, task: Any) -> None:
        super().__init__()
        self.net = task.model
        self.regression = bool(task.regression)
        self.register_buffer("mean", task.target_mean.detach().clone().float())
        self.register_buffer("std", task.target_std.detach().clone().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        if self.regression:
            return out * self.std + self.mean
        return out.softmax(dim=1)


def output_name(task: Any) -> str:
    return "prediction" if task.regression else "probabilities"


def mlp_graph(task: Any, opset: int) -> onnx.ModelProto:
    """The MLP from ``features`` [N, F] to ``probabilities`` [N, K] or ``prediction`` [N, 1]."""
    module = Scores(task).float().cpu().eval()
    example = torch.zeros(2, task.num_features)
    name = output_name(task)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            buffer,
            input_names=[FEATURES],
            output_names=[name],
            dynamic_axes={FEATURES: {0: "batch"}, name: {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )
    return onnx.load_from_string(buffer.getvalue())


def classic_graph(task: Any, opset: int) -> onnx.ModelProto:
    """A fitted scikit-learn model from ``features`` to ``probabilities`` [N, K] (every class
    of the data, in class-index order) or ``prediction`` [N, 1]."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    from mlcycle.tables import boosted, onnx_steps

    onnx_steps.register()
    boosted.register_converters()  # LightGBM, XGBoost, CatBoost
    estimator = task.fitted
    options = {} if task.regression else {id(estimator): {"zipmap": False}}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = convert_sklearn(
                estimator,
                initial_types=[(FEATURES, FloatTensorType([None, task.num_features]))],
                options=options,
                target_opset={"": opset, ML: ML_OPSET},
            )
    except Exception as exc:  # skl2onnx names the estimator it has no converter for
        raise UserError(
            f"{type(estimator).__name__} cannot be exported to ONNX by skl2onnx: "
            f"{' '.join(str(exc).split())[:300]}"
        ) from exc
    graph = model.graph
    outputs = [o.name for o in graph.output]
    source = outputs[0] if task.regression else _probabilities_output(outputs)
    final = output_name(task)
    if not task.regression:
        source = _all_classes(graph, source, estimator, task.hparams.num_classes)
    if source != final:
        graph.node.append(helper.make_node("Identity", [source], [final], name=f"{final}__out"))
    width = 1 if task.regression else int(task.hparams.num_classes)
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(final, TensorProto.FLOAT, [None, width]))
    return model


def _probabilities_output(outputs: list[str]) -> str:
    named = [o for o in outputs if "prob" in o.lower()]
    if not named:
        raise UserError(
            f"the classic model's ONNX graph has no probabilities output ({', '.join(outputs)}); "
            "use an estimator with predict_proba (SVC: params {probability: true})"
        )
    return named[0]


def _all_classes(graph: onnx.GraphProto, source: str, estimator: Any, num_classes: int) -> str:
    """Probabilities over the estimator's classes spread to every class of the data (a class
    missing from train gets 0), as :func:`mlcycle.tables.classic.class_probabilities` does."""
    seen = np.asarray(estimator.classes_, dtype=int)
    if len(seen) == num_classes and (seen == np.arange(num_classes)).all():
        return source
    spread = np.zeros((len(seen), num_classes), dtype=np.float32)
    spread[np.arange(len(seen)), seen] = 1.0
    graph.initializer.append(
        helper.make_tensor(
            "mlcycle_class_spread", TensorProto.FLOAT, list(spread.shape), spread.ravel()
        )
    )
    cast, out = f"{source}__float", f"{source}__all"
    graph.node.append(helper.make_node("Cast", [source], [cast], to=TensorProto.FLOAT))
    graph.node.append(helper.make_node("MatMul", [cast, "mlcycle_class_spread"], [out]))
    return out


def _align(models: list[onnx.ModelProto]) -> None:
    """One opset per domain and one IR version, so the graphs can be merged."""
    versions: dict[str, int] = {}
    for model in models:
        for entry in model.opset_import:
            versions[entry.domain] = max(versions.get(entry.domain, 0), entry.version)
    ir = max(m.ir_version for m in models)
    for model in models:
        used = {e.domain for e in model.opset_import}
        del model.opset_import[:]
        model.opset_import.extend(helper.make_opsetid(d, versions[d]) for d in sorted(used))
        model.ir_version = ir


def join(pipeline_model: onnx.ModelProto, model: onnx.ModelProto) -> onnx.ModelProto:
    """The two graphs as one: the pipeline's ``features`` feed the model's."""
    _align([pipeline_model, model])
    final = model.graph.output[0].name
    joined = onnx.compose.merge_models(
        pipeline_model, model, io_map=[(FEATURES, FEATURES)], prefix2="model/"
    )
    for node in joined.graph.node:  # the output keeps its plain name
        node.output[:] = [final if o == f"model/{final}" else o for o in node.output]
    joined.graph.output[0].name = final
    domains = {e.domain: e.version for e in [*pipeline_model.opset_import, *model.opset_import]}
    del joined.opset_import[:]
    joined.opset_import.extend(helper.make_opsetid(d, v) for d, v in sorted(domains.items()))
    onnx.checker.check_model(joined)
    return joined


def tempered(model: onnx.ModelProto, temperature: float, eps: float = 1e-12) -> onnx.ModelProto:
    """The classifier's graph with temperature scaling after it: its ``probabilities`` become
    ``softmax(log(max(p, eps)) / temperature)`` (as ``mlcycle.evaluators.calibration`` computes
    them in Python), under the same output name."""
    graph = model.graph
    final = graph.output[0].name
    raw = f"{final}__untempered"
    for node in graph.node:
        node.output[:] = [raw if o == final else o for o in node.output]
    graph.initializer.extend(
        [
            helper.make_tensor("mlcycle_calibration_eps", TensorProto.FLOAT, [], [eps]),
            helper.make_tensor("mlcycle_temperature", TensorProto.FLOAT, [], [temperature]),
        ]
    )
    graph.node.extend(
        [
            helper.make_node("Clip", [raw, "mlcycle_calibration_eps"], [f"{raw}__clipped"]),
            helper.make_node("Log", [f"{raw}__clipped"], [f"{raw}__log"]),
            helper.make_node("Div", [f"{raw}__log", "mlcycle_temperature"], [f"{raw}__scaled"]),
            helper.make_node("Softmax", [f"{raw}__scaled"], [final], axis=1),
        ]
    )
    onnx.checker.check_model(model)
    return model
