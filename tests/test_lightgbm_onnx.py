"""LightGBM in ONNX splits float32 features as LightGBM does: its float64 thresholds are taken
down to the float32 below, never rounded up past a feature value (wine: up to 8e-2 apart)."""

from __future__ import annotations

import numpy as np
import pytest

from mlcycle.tables.lightgbm_onnx import down, float32_model_string, float32_splits

lightgbm = pytest.importorskip("lightgbm")


def test_down_is_the_largest_float32_not_above():
    for value in (0.1, -0.1, 1 / 3, 2.5, -7.000000001, 1e-35):
        below = down(value)
        assert below <= value and np.float32(below) == below
        assert float(np.nextafter(np.float32(below), np.float32(np.inf))) > value


def wine_model() -> tuple[object, np.ndarray]:
    from sklearn.datasets import load_wine

    x, y = load_wine(return_X_y=True)
    x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)  # as the pipeline hands them over
    model = lightgbm.LGBMClassifier(
        n_estimators=200, learning_rate=0.05, extra_trees=True, verbosity=-1, random_state=0
    )
    return model.fit(x[::2], y[::2]), x


def test_the_copy_predicts_the_same_and_its_thresholds_are_float32():
    model, x = wine_model()
    clone = float32_splits(model)
    assert np.array_equal(clone.predict_proba(x), model.predict_proba(x))
    text = clone.booster_.model_to_string()
    values = [float(v) for ln in text.split("\n") if ln.startswith("threshold=")
              for v in ln.split("=")[1].split()]  # fmt: skip
    assert values and all(np.float32(v) == v for v in values)
    original = model.booster_.model_to_string()
    assert float32_model_string(original).count("Tree=") == original.count("Tree=")


def test_the_onnx_graph_agrees_with_lightgbm():
    import onnxruntime as ort
    from skl2onnx import to_onnx

    from mlcycle.tables.boosted import register_converters

    register_converters()
    model, x = wine_model()
    graph = to_onnx(
        model, x[:1], options={id(model): {"zipmap": False}}, target_opset={"": 17, "ai.onnx.ml": 3}
    )
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    probabilities = session.run(None, {session.get_inputs()[0].name: x})[1]
    assert np.abs(probabilities - model.predict_proba(x)).max() < 1e-5
