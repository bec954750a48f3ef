"""Error analysis of out-of-fold predictions and the variable importance figures of compare.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from mlcycle.images.selection.importance import (
    cnn_attributions,
    importance_map_figure,
    pixel_permutation_importance,
    sample_per_class,
)
from mlcycle.reports.figures import save
from mlcycle.selection.compare.analysis import (
    confused_pairs,
    error_correlation,
    error_correlation_figure,
    highest_loss,
    highest_loss_figure,
    macro_f1,
    per_class_f1,
    per_class_f1_figure,
    shortlist,
)

CLASSES = ["cat", "dog", "bird"]


def one_hot_like(pred: np.ndarray, confidence: float, num_classes: int = 3) -> np.ndarray:
    """Probabilities with ``confidence`` on ``pred`` and the rest shared by the other classes."""
    probs = np.full((len(pred), num_classes), (1 - confidence) / (num_classes - 1))
    probs[np.arange(len(pred)), pred] = confidence
    return probs


def wrong_on(target: np.ndarray, rows: np.ndarray, shift: int = 1) -> np.ndarray:
    """Predictions equal to the target except on ``rows``, where they are ``shift`` classes on."""
    pred = target.copy()
    pred[rows] = (target[rows] + shift) % 3
    return pred


@pytest.fixture
def target() -> np.ndarray:
    return np.arange(90) % 3


def test_macro_f1_agrees_with_sklearn():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 4, 200)
    probs = rng.random((200, 4))
    expected = f1_score(target, probs.argmax(1), average="macro", labels=range(4), zero_division=0)
    assert macro_f1(probs, target, 4) == pytest.approx(expected)
    # a class never true nor predicted counts as 0, like sklearn with zero_division=0
    probs[:, 3] = -1
    target[target == 3] = 0
    expected = f1_score(target, probs.argmax(1), average="macro", labels=range(4), zero_division=0)
    assert macro_f1(probs, target, 4) == pytest.approx(expected)


def test_per_class_f1_and_confused_pairs(target, tmp_path):
    a = one_hot_like(wrong_on(target, np.arange(0, 9)), 0.7)  # 3 of each class wrong
    b = one_hot_like(wrong_on(target, np.array([0, 3, 6, 9])), 0.7)  # only cats wrong
    oof = {"a": a, "b": b}
    table = per_class_f1(oof, target, CLASSES)
    assert set(table) == {"a", "b"} and set(table["b"]) == set(CLASSES)
    for name, probs in oof.items():
        expected = f1_score(target, probs.argmax(1), average=None)
        assert [table[name][c] for c in CLASSES] == pytest.approx(expected)
    pairs = confused_pairs(oof, target, CLASSES, top=5)
    assert pairs[0] == {"true": "cat", "predicted": "dog", "count": 7, "by_model": {"a": 3, "b": 4}}
    assert [(p["true"], p["predicted"]) for p in pairs] == [
        ("cat", "dog"),
        ("dog", "bird"),
        ("bird", "cat"),
    ]
    json.dumps(pairs)  # the orchestrator writes it to a report
    save(per_class_f1_figure(table, CLASSES), tmp_path / "f1.png")
    assert (tmp_path / "f1.png").stat().st_size > 0


def test_error_correlation_identical_and_disjoint(target, tmp_path):
    a = one_hot_like(wrong_on(target, np.arange(0, 9)), 0.8)
    b = one_hot_like(wrong_on(target, np.arange(9, 27)), 0.8)
    corr = error_correlation({"a": a, "a_copy": a.copy(), "b": b}, target)
    json.dumps(corr)
    assert corr["names"] == ["a", "a_copy", "b"]
    dis, df = np.array(corr["disagreement"]), np.array(corr["double_fault"])
    assert corr["error_rate"] == pytest.approx({"a": 0.1, "a_copy": 0.1, "b": 0.2})
    assert dis[0, 1] == 0 and np.all(np.diag(dis) == 0)
    assert df[0, 1] == pytest.approx(corr["error_rate"]["a"])  # identical: both wrong every time
    assert df[0, 2] == 0 and df[2, 0] == 0  # disjoint errors never coincide
    assert dis[0, 2] == pytest.approx(0.3)
    assert np.allclose(dis, dis.T) and np.allclose(df, df.T)
    save(error_correlation_figure(corr), tmp_path / "corr.png")
    assert (tmp_path / "corr.png").stat().st_size > 0


def complementary(target: np.ndarray) -> dict[str, np.ndarray]:
    """A strong-ish model (80 % right), its exact copy, and three unsure weak models (67 % right)
    whose errors fall on disjoint thirds and on another class than the strong model's: alone
    each weak model is worse, together with the strong one they are always right."""
    n = len(target)
    strong = one_hot_like(wrong_on(target, np.arange(0, n, 5)), 0.6)  # every fifth image wrong
    oof = {"strong": strong, "strong_copy": strong.copy()}
    for i in range(3):
        third = np.arange(i * n // 3, (i + 1) * n // 3)
        oof[f"weak{i}"] = one_hot_like(wrong_on(target, third, shift=2), 0.5)
    return oof


def test_shortlist_prefers_complementary_models(target):
    oof = complementary(target)
    result = shortlist(oof, target, 3, k_min=2, k_max=5)
    assert result["best_single"] == "strong"
    assert result["best_single_f1"] == pytest.approx(macro_f1(oof["strong"], target, 3))
    assert result["members"][0] == "strong"
    # weak0 ties with the copy (neither changes a prediction) but fails less often with strong
    assert result["members"] == ["strong", "weak0", "weak1", "weak2"]
    assert result["trace"][1]["ensemble_f1"] == pytest.approx(result["best_single_f1"])
    assert result["ensemble_f1"] == pytest.approx(1.0)
    assert result["ensemble_f1"] >= result["best_single_f1"]
    trace = result["trace"]
    assert [t["added"] for t in trace] == result["members"]
    assert trace[-1]["ensemble_f1"] == result["ensemble_f1"]
    assert trace[0]["ensemble_f1"] == trace[0]["single_f1"] == result["best_single_f1"]
    assert "at least 2" in result["rule"] and "stop at 5" in result["rule"]
    json.dumps(result)


def test_shortlist_k_min_and_without_replacement(target):
    oof = complementary(target)
    # forced to take everything: each candidate once, the copy included but only once
    result = shortlist(oof, target, 3, k_min=5, k_max=5)
    assert sorted(result["members"]) == sorted(oof)
    # fewer candidates than k_min: all of them
    few = {"strong": oof["strong"], "weak0": oof["weak0"]}
    assert sorted(shortlist(few, target, 3, k_min=3)["members"]) == ["strong", "weak0"]
    # nothing raises the score, yet k_min models are kept
    perfect = one_hot_like(target, 0.9)
    same = {f"m{i}": perfect.copy() for i in range(4)}
    result = shortlist(same, target, 3, k_min=3, k_max=5)
    assert result["members"] == ["m0", "m1", "m2"]


def test_shortlist_breaks_ties_by_double_fault(target):
    """Adding either candidate leaves the ensemble's predictions those of ``a``; the one that
    errs elsewhere (low double fault) wins over ``a``'s copy."""
    a_pred = wrong_on(target, np.arange(0, 9))
    a = one_hot_like(a_pred, 0.8)
    shy = one_hot_like(wrong_on(target, np.arange(30, 39)), 0.4)  # wrong elsewhere, unsure
    oof = {"a": a, "a_copy": a.copy(), "shy": shy}
    result = shortlist(oof, target, 3, k_min=2, k_max=2)
    assert result["trace"][1]["ensemble_f1"] == pytest.approx(result["best_single_f1"])
    assert result["members"] == ["a", "shy"]


def test_highest_loss_order_and_gallery(target, tmp_path):
    probs = one_hot_like(target, 0.9)
    probs[4] = [0.05, 0.05, 0.9]  # true dog, very wrong
    probs[7] = [0.2, 0.5, 0.3]  # true dog, mildly wrong
    probs[10] = [0.1, 0.6, 0.3]  # true dog, a little unsure
    rows = highest_loss({"m": probs}, target, top=4)["m"]
    assert [r[0] for r in rows] == [4, 7, 10, 0]
    assert rows[0][1] == pytest.approx(-np.log(0.05)) and rows[0][2] == 2
    assert [r[1] for r in rows] == sorted((r[1] for r in rows), reverse=True)
    gray = lambda i: np.full((12, 12), i * 10 % 255, np.uint8)  # noqa: E731
    rgb = lambda i: np.full((12, 10, 3), i * 10 % 255, np.uint8)  # noqa: E731
    for image_of in (gray, rgb):
        fig = highest_loss_figure("m", rows, image_of, CLASSES, target)
        assert "loss" in fig.axes[0].get_title()
        save(fig, tmp_path / "loss.png")
        assert (tmp_path / "loss.png").stat().st_size > 0


def tiny_cnn(channels: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(channels, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(4, 6, 3, stride=2, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(6, 3),
    )


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("method", ["integrated_gradients", "gradcam"])
def test_cnn_attributions(channels, method, tmp_path):
    model = tiny_cnn(channels)
    inputs = torch.randn(4, channels, 16, 16)
    targets = torch.tensor([0, 1, 2, 0])
    shape = (20, 20) if channels == 1 else (20, 20, 3)  # originals need not match the input size
    images = [np.random.default_rng(i).integers(0, 255, shape, dtype=np.uint8) for i in range(4)]
    with torch.inference_mode():  # the caller's context must not matter
        fig = cnn_attributions(model, inputs, targets, images, CLASSES, method=method)
    assert isinstance(fig, Figure)
    assert len([ax for ax in fig.axes if ax.images]) == 8  # image and overlay per row
    save(fig, tmp_path / f"{method}.png")
    assert (tmp_path / f"{method}.png").stat().st_size > 0


def test_cnn_attributions_rejects_unknown_method():
    with pytest.raises(ValueError, match="unknown attribution method"):
        cnn_attributions(
            tiny_cnn(1), torch.randn(1, 1, 16, 16), torch.tensor([0]), [], CLASSES, "x"
        )


def test_sample_per_class_is_fixed_and_balanced():
    target = np.array([0] * 10 + [1] * 1 + [2] * 5)
    sample = sample_per_class(target, per_class=2, seed=3)
    assert sample == sample_per_class(target, per_class=2, seed=3)
    assert [int(target[p]) for p in sample] == [0, 0, 1, 2, 2]


def region_problem(shape: tuple[int, ...], seed: int = 0):
    """Noise images whose class is whether the 2x2 region at rows 2-3, columns 4-5 is bright."""
    rng = np.random.default_rng(seed)
    images = rng.random((400, *shape))
    label = (images[:, 2:4, 4:6].mean(axis=tuple(range(1, images.ndim))) > 0.5).astype(int)
    X = images.reshape(len(images), -1)
    return LogisticRegression(max_iter=500).fit(X, label), X, label


@pytest.mark.parametrize(
    "shape, max_features",
    [((8, 8), 1024), ((8, 8), 16), ((8, 8, 3), 1024), ((8, 8, 3), 64)],
    ids=["per-pixel", "patches", "per-pixel-rgb", "pixels-with-channels"],
)
def test_pixel_permutation_importance_finds_the_region(shape, max_features, tmp_path):
    estimator, X, y = region_problem(shape)
    importance = pixel_permutation_importance(
        estimator, X, y, shape, n_repeats=2, max_features=max_features
    )
    assert importance.shape == (8, 8)
    inside = np.zeros((8, 8), bool)
    inside[2:4, 4:6] = True
    assert inside[np.unravel_index(importance.argmax(), importance.shape)]
    assert importance[inside].min() > 5 * max(importance[~inside].max(), 1e-3)
    fig = importance_map_figure(
        {"logreg": importance, "copy": importance}, X.mean(0).reshape(shape)
    )
    save(fig, tmp_path / "importance.png")
    assert (tmp_path / "importance.png").stat().st_size > 0


def test_importance_map_figure_without_mean_image(tmp_path):
    fig = importance_map_figure({"a": np.random.default_rng(0).normal(size=(6, 6))})
    save(fig, tmp_path / "map.png")
    assert (tmp_path / "map.png").stat().st_size > 0


def test_pixel_permutation_importance_rejects_wrong_shape():
    estimator, X, y = region_problem((8, 8))
    with pytest.raises(ValueError, match="flattened images"):
        pixel_permutation_importance(estimator, X, y, (4, 4))
