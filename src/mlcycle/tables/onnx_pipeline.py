"""The fitted pipeline as an ONNX graph (skl2onnx, with converters for the pipeline's own
steps), from the table's columns to the ``features`` tensor the model reads.

Two steps of the pipeline have no ONNX operators and run before the graph, in ``predict.py``
(standalone, described in ``model.json``): reading each value as its column's kind
(``Coerce``) and splitting dates into their parts (``DateParts``): :func:`pre_step`. The
graph's inputs are the columns after them: one ``[N, 1]`` tensor per column, float for numbers,
booleans and date parts, string for categories (:func:`input_types`; :func:`date_inputs` says
how each date part is made). Group aggregates are looked up in the graph (``LabelEncoder``).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import onnx
import pandas as pd
from onnx import TensorProto, helper

from mlcycle.core.errors import UserError
from mlcycle.tables.steps import CYCLES

FEATURES = "features"
ML = "ai.onnx.ml"
ML_OPSET = 3


def pre_step(pipeline: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """What runs before the graph: the pipeline's ``coerce`` and ``dates`` steps."""
    return pipeline[:2].transform(frame)


def input_types(pre: pd.DataFrame) -> list[tuple[str, str]]:
    """``(column, "double" | "string")`` of every column after the pre-step, in order."""
    return [(str(c), "string" if pre[c].dtype == object else "double") for c in pre.columns]


def _skl_type(kind: str) -> Any:
    from skl2onnx.common.data_types import DoubleTensorType, StringTensorType

    return StringTensorType([None, 1]) if kind == "string" else DoubleTensorType([None, 1])


def pipeline_graph(pipeline: Any, pre: pd.DataFrame, opset: int) -> onnx.ModelProto:
    """The fitted pipeline after the pre-step: inputs as :func:`input_types`, output
    ``features`` float [N, F], the columns the model sees.

    Numbers go through the graph in double precision and become float32 at the end, as the
    Python pipeline computes in float64 and hands float32 to the model: a tree's split then
    sees the same value on both sides of its threshold."""
    from skl2onnx import convert_sklearn

    from mlcycle.tables import onnx_steps

    onnx_steps.register()
    aggregates = pipeline.named_steps["aggregates"]
    plan = pipeline.named_steps["columns"]
    after = aggregates.transform(pre)  # the ColumnTransformer's input: pre + aggregate columns
    kinds = dict(input_types(pre))
    made = [str(c) for c in after.columns if str(c) not in kinds]
    types = [(c, _skl_type(kinds.get(c, "double"))) for c in map(str, after.columns)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = convert_sklearn(
            plan.transformer_, initial_types=types, target_opset={"": opset, ML: ML_OPSET}
        )
    _column_names(model, [c for c, _ in types])
    transformed = _as_double(model)
    graph = model.graph
    keep = np.asarray(plan.keep_, dtype=np.int64)
    graph.initializer.append(
        helper.make_tensor("mlcycle_keep_columns", TensorProto.INT64, [len(keep)], keep)
    )
    graph.node.extend(
        [
            helper.make_node(
                "Gather",
                [transformed, "mlcycle_keep_columns"],
                ["mlcycle_kept"],
                axis=1,
                name="keep",
            ),
            helper.make_node(
                "Cast", ["mlcycle_kept"], [FEATURES], to=TensorProto.FLOAT, name="to_float"
            ),
        ]
    )
    del graph.output[:]
    graph.output.append(
        helper.make_tensor_value_info(FEATURES, TensorProto.FLOAT, [None, len(keep)])
    )
    _aggregates_in_graph(model, aggregates, made, kinds)
    _order_inputs(model, [c for c, _ in input_types(pre)], kinds)
    return model


def _as_double(model: onnx.ModelProto) -> str:
    """The ColumnTransformer's output as one double tensor: the branches that give float
    (encoders of categories) are cast before the final Concat. Returns its name."""
    graph = model.graph
    output = graph.output[0].name
    inferred = onnx.shape_inference.infer_shapes(model)
    elem = {
        v.name: v.type.tensor_type.elem_type
        for v in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]
    }
    producer = next((n for n in graph.node if output in n.output), None)
    if producer is None or producer.op_type != "Concat":
        if elem.get(output) == TensorProto.DOUBLE:
            return output
        graph.node.append(
            helper.make_node("Cast", [output], [f"{output}__double"], to=TensorProto.DOUBLE)
        )
        return f"{output}__double"
    inputs = []
    for name in producer.input:
        if elem.get(name, TensorProto.DOUBLE) != TensorProto.DOUBLE:
            cast = f"{name}__double"
            graph.node.append(helper.make_node("Cast", [name], [cast], to=TensorProto.DOUBLE))
            name = cast
        inputs.append(name)
    producer.input[:] = inputs
    _topological(graph)
    return output


def _topological(graph: onnx.GraphProto) -> None:
    """Reorder nodes so each runs after the nodes it reads from (appended casts included)."""
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        progress = False
        for node in list(pending):
            if all(i in ready for i in node.input):
                ordered.append(node)
                ready.update(node.output)
                pending.remove(node)
                progress = True
        if not progress:  # leave what cannot be placed (the checker will say why)
            ordered += pending
            break
    del graph.node[:]
    graph.node.extend(ordered)


def _column_names(model: onnx.ModelProto, columns: list[str]) -> None:
    """The graph's inputs named as the table's columns: skl2onnx writes ``mean radius`` as
    ``mean_radius`` (its inputs keep the order of ``initial_types``)."""
    graph = model.graph
    if len(graph.input) != len(columns):
        raise UserError(
            f"skl2onnx made {len(graph.input)} inputs for {len(columns)} columns; cannot name them"
        )
    renames = {i.name: column for i, column in zip(graph.input, columns, strict=True)}
    renames = {old: new for old, new in renames.items() if old != new}
    if not renames:
        return
    temporary = {old: f"mlcycle_input_{n}" for n, old in enumerate(renames)}
    for step in (temporary, {temporary[old]: new for old, new in renames.items()}):
        for node in graph.node:
            node.input[:] = [step.get(name, name) for name in node.input]
        for value in graph.input:
            value.name = step.get(value.name, value.name)


def _aggregates_in_graph(
    model: onnx.ModelProto, step: Any, made: list[str], kinds: dict[str, str]
) -> None:
    """Each aggregate column becomes a lookup of its group's value (``LabelEncoder`` to the
    group's index, then ``Gather`` from the double table; a group unseen in train gets the
    step's default) instead of a graph input."""
    graph = model.graph
    inputs = {i.name for i in graph.input}
    nodes = []
    for name in made:
        if name not in inputs:
            continue  # not used by the ColumnTransformer
        _, by, _ = step.sources_[name]
        table, default = step.tables_[name], float(step.defaults_[name])
        keys = list(table)
        values = np.asarray([*(table[k] for k in keys), default], dtype=np.float64)
        graph.initializer.append(
            helper.make_tensor(f"{name}__values", TensorProto.DOUBLE, [len(values)], values)
        )
        index = f"{name}__index"
        if kinds.get(by) == "string":
            nodes.append(
                helper.make_node(
                    "LabelEncoder", [by], [index], domain=ML, name=f"{name}__encoder",
                    keys_strings=keys, values_int64s=list(range(len(keys))), default_int64=len(keys),
                )
            )  # fmt: skip
        else:  # a numeric group column: keys are numbers as text; a missing group is ""
            numbers = [k for k in keys if k != ""]
            found = f"{name}__found"
            nodes.append(
                helper.make_node(
                    "LabelEncoder", [f"{name}__key"], [found], domain=ML, name=f"{name}__encoder",
                    keys_floats=[float(k) for k in numbers] or [float("inf")],
                    values_int64s=[keys.index(k) for k in numbers] or [len(keys)],
                    default_int64=len(keys),
                )
            )  # fmt: skip
            missing = keys.index("") if "" in keys else len(keys)
            graph.initializer.append(
                helper.make_tensor(f"{name}__missing", TensorProto.INT64, [], [missing])
            )
            nodes = [
                *nodes[:-1],
                helper.make_node("Cast", [by], [f"{name}__key"], to=TensorProto.FLOAT),
                nodes[-1],
                helper.make_node("IsNaN", [by], [f"{name}__isnan"]),
                helper.make_node("Where", [f"{name}__isnan", f"{name}__missing", found], [index]),
            ]
        nodes.append(
            helper.make_node("Gather", [f"{name}__values", index], [name], name=f"{name}__lookup")
        )
    if not nodes:
        return
    keep = [i for i in graph.input if i.name not in made]
    del graph.input[:]
    graph.input.extend(keep)
    for node in reversed(nodes):
        graph.node.insert(0, node)


def _order_inputs(model: onnx.ModelProto, columns: list[str], kinds: dict[str, str]) -> None:
    """Every pre-step column is an input, in table order (one the pipeline dropped too, so a
    caller feeds every column without knowing which the graph uses)."""
    graph = model.graph
    have = {i.name: i for i in graph.input}
    ordered = []
    for column in columns:
        if column in have:
            ordered.append(have[column])
            continue
        kind = TensorProto.STRING if kinds[column] == "string" else TensorProto.DOUBLE
        ordered.append(helper.make_tensor_value_info(column, kind, [None, 1]))
    del graph.input[:]
    graph.input.extend(ordered)


def date_inputs(pipeline: Any) -> dict[str, dict[str, Any]]:
    """``{date part column: {date, part, fn, period, start}}`` of the ``dates`` step: how the
    pre-step computes each part (``fn``: ``sin``/``cos`` for the cyclic ones)."""
    step = pipeline.named_steps["dates"]
    found: dict[str, dict[str, Any]] = {}
    for column, parts in step.parts_.items():
        for part in parts:
            found[f"{column}_{part}"] = {"date": column, "part": part}
            if step.cyclic and part in CYCLES:
                start = 1 if part in ("month", "quarter", "dayofyear") else 0
                for fn in ("sin", "cos"):
                    found[f"{column}_{part}_{fn}"] = {
                        "date": column, "part": part, "fn": fn, "period": CYCLES[part],
                        "start": start,
                    }  # fmt: skip
    return found
