"""The server answers every output form a model.json declares (``output.kind``) or implies
(model.json files written before forms were declared), with hand-made ONNX graphs: masks,
boxes, labels over a threshold, and the raw outputs of an undescribed one."""

from __future__ import annotations

import base64
import io
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from serve_helpers import png, start

from mlcycle.edge.form import Form
from mlcycle.edge.forms import form_name

SPEC = {"channels": 1, "height": 8, "width": 8, "mean": [0.5], "std": [0.25]}


def write_model(folder: Path, nodes: list, outputs: list, batch, task: str, output: dict) -> Path:
    """``folder/model.onnx`` from ``nodes`` on the 1x8x8 ``input``, and its model.json."""
    import onnx
    from onnx import TensorProto, helper

    folder.mkdir()
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 1, 8, 8])
    graph = helper.make_graph(nodes, task, [x], outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(folder / "model.onnx"))
    meta = {
        "format_version": 1,
        "task": task,
        "class_names": ["light", "dark"],
        "input": {"shape": [batch, 1, 8, 8], **SPEC},
        "output": output,
    }
    (folder / "model.json").write_text(json.dumps(meta))
    return folder / "model.onnx"


def tiny_graph(folder: Path, task: str) -> Path:
    """Segmentation: class 0 where the input is bright, 1 where dark. Detection: batch one,
    two fixed boxes (scores 0.9 and 0.3), post-processing in the graph as exported. Neither
    model.json declares its form: the server reads it from the output description."""
    from onnx import TensorProto, helper

    if task == "segmentation":
        nodes = [
            helper.make_node("Neg", ["input"], ["neg"]),
            helper.make_node("Concat", ["input", "neg"], ["logits"], axis=1),
        ]
        outs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2, 8, 8])]
        output = {"name": "logits", "shape": ["batch", 2, 8, 8]}
        return write_model(folder, nodes, outs, "batch", task, output)
    consts = {
        "boxes": (TensorProto.FLOAT, [2, 4], [1, 2, 5, 6, 0, 0, 8, 8]),
        "scores": (TensorProto.FLOAT, [2], [0.9, 0.3]),
        "labels": (TensorProto.INT64, [2], [1, 0]),
    }
    nodes = [
        helper.make_node(
            "Constant", [], [name], value=helper.make_tensor(name, kind, shape, values)
        )
        for name, (kind, shape, values) in consts.items()
    ]
    outs = [helper.make_tensor_value_info(n, k, s) for n, (k, s, _) in consts.items()]
    output = {"batch": 1, "outputs": [{"name": n} for n in consts]}
    return write_model(folder, nodes, outs, 1, task, output)


def pooled_graph(folder: Path, task: str, output: dict) -> Path:
    """Two scores per image: the mean of the normalized input and its negative (2.0 and -2.0
    for a white image), under the name ``scores``."""
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["mean"]),
        helper.make_node("Neg", ["mean"], ["neg"]),
        helper.make_node("Concat", ["mean", "neg"], ["scores"], axis=1),
    ]
    outs = [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 2])]
    return write_model(folder, nodes, outs, "batch", task, output)


def served(model: Path, store_dir: Path, files: list[tuple[str, bytes]]) -> tuple[list, list]:
    """The server's answers to ``files`` and the store rows they made."""
    running, _, _ = start(model, store_dir)
    with running:
        results = running.client().predict_files(files).json()["results"]
        running.service.store.flush()
        rows = running.service.store.rows()
    return results, rows


WHITE, BLACK = np.full((10, 12), 255, np.uint8), np.zeros((10, 12), np.uint8)


def test_segmentation_masks_at_each_images_size(tmp_path):
    running, _, _ = start(tiny_graph(tmp_path / "seg", "segmentation"), tmp_path / "store")
    image = np.zeros((12, 16), np.uint8)
    image[:, :8] = 255  # left half bright: class 0, right half dark: class 1
    with running:
        result = running.client().predict_files([("half.png", png(image))]).json()["results"][0]
        running.service.store.flush()
        rows_ = running.service.store.rows()
    assert result["size"] == [16, 12] and result["class_shares"] == {"light": 0.5, "dark": 0.5}
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(result["mask_png"]))))
    assert mask.shape == (12, 16) and (mask[:, :8] == 0).all() and (mask[:, 8:] == 1).all()
    assert rows_[0]["predicted"] in ("light,dark", "dark,light")


def test_detection_boxes_in_the_images_own_pixels(tmp_path):
    running, model, _ = start(tiny_graph(tmp_path / "det", "detection"), tmp_path / "store")
    assert not model.batched
    files = [("tall.png", png(np.zeros((24, 16), np.uint8)))] * 5
    with running:
        with ThreadPoolExecutor(4) as pool:  # batch-one graph: one image per call, under load
            responses = list(pool.map(lambda _: running.client().predict_files(files), range(4)))
    for response in responses:
        assert response.status == 200
        for result in response.json()["results"]:
            assert result["size"] == [16, 24]
            assert result["boxes"] == [
                {"class": "dark", "index": 1, "score": 0.9, "box": [2.0, 6.0, 10.0, 18.0]}
            ]


@pytest.mark.parametrize("applied", [True, False])
def test_labels_at_or_above_the_threshold(tmp_path, applied):
    """The form the plugin's multi-label task declares; logits when the sigmoid is not in the
    graph."""
    output = {"name": "scores", "kind": "labels", "labels": ["light", "dark"]}
    output.update({"threshold": 0.5, "sigmoid_applied": applied})
    if applied:  # these scores as probabilities: 2.0 is over any threshold, -2.0 under
        output["threshold"] = 1.5
    model = pooled_graph(tmp_path / "labels", "multilabel", output)
    results, rows = served(
        model, tmp_path / "store", [("w.png", png(WHITE)), ("b.png", png(BLACK))]
    )
    white, black = results
    assert white["labels"] == ["light"] and black["labels"] == ["dark"]
    assert white["threshold"] == output["threshold"]
    light = 2.0 if applied else round(1 / (1 + np.exp(-2.0)), 6)
    assert white["probabilities"]["light"] == pytest.approx(light, abs=1e-6)
    by_id = {row["id"]: row for row in rows}
    stored = by_id[white["prediction_id"]]
    assert stored["predicted"] == "light" and stored["confidence"] is None
    assert json.loads(stored["top_k"]) == white["probabilities"]


def test_an_undescribed_output_is_answered_raw(tmp_path):
    model = pooled_graph(tmp_path / "raw", "regression", {"name": "scores"})
    running, served_model, _ = start(model, tmp_path / "store")
    assert served_model.form.name == "raw" and served_model.task == "regression"
    with running:
        (result,) = running.client().predict_files([("w.png", png(WHITE))]).json()["results"]
        card = running.client().get("/v1/model").json()
    assert result["task"] == "regression" and result["outputs"] == {"scores": [2.0, -2.0]}
    assert card["task"] == "regression" and card["output_form"] == "raw"


def test_forms_of_model_json_files_written_before_forms_were_declared():
    classes = {"name": "logits", "shape": ["batch", 3], "softmax_applied": False}
    assert form_name({"task": "classification", "output": classes}) == "classes"
    assert form_name({"task": "classification"}) == "classes"
    assert form_name({"output": {"name": "logits", "shape": ["batch", 3, 8, 8]}}) == "mask"
    assert form_name({"output": {"batch": 1, "outputs": [{"name": "boxes"}]}}) == "boxes"
    assert form_name({"output": {"name": "probabilities"}}) == "raw"
    assert form_name({"output": {**classes, "kind": "labels"}}) == "labels"


class Total(Form):
    """A form a plugin might bring: the sum of the outputs."""

    name = "total"

    def answer(self, outputs: list[np.ndarray], size: tuple[int, int]) -> dict:
        return {"total": round(float(np.asarray(outputs[0]).sum()), 6)}

    def stored(self, result: dict) -> tuple:
        return str(result["total"]), None, None


def test_a_plugin_brings_its_own_form_through_an_entry_point(tmp_path, monkeypatch):
    from importlib.metadata import EntryPoint

    from mlcycle.edge import forms

    point = EntryPoint("total", "test_serve_forms:Total", forms.GROUP)
    monkeypatch.setattr(
        forms, "entry_points", lambda group: [point] if group == forms.GROUP else []
    )
    forms.known_forms.cache_clear()
    try:
        model = pooled_graph(tmp_path / "total", "summing", {"name": "scores", "kind": "total"})
        results, rows = served(model, tmp_path / "store", [("w.png", png(WHITE))])
    finally:
        forms.known_forms.cache_clear()
    assert results[0]["total"] == 0.0 and rows[0]["predicted"] == "0.0"
