"""The standalone predictor: ``src/mlcycle/edge`` copied alone (``python -m edge``, where
mlcycle, lightning, torch & co cannot be imported) and scripts/predict.py give predictions that
match the eager model."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from export_helpers import NOT_FOR_ONNX, PREDICT, device_folder, exported_run, on_device
from PIL import Image

from mlcycle.edge import decode


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    return exported_run(tmp_path_factory)


@pytest.fixture(scope="module")
def device(tmp_path_factory) -> Path:
    return device_folder(tmp_path_factory.mktemp("device"))


@pytest.fixture(scope="module")
def odd_images(tmp_path_factory, exported):
    """Validation images plus the same pictures in other sizes and modes than training saw."""
    run, _, _ = exported
    rows = [line.split(",") for line in (run / "splits.csv").read_text().splitlines()[1:]]
    val = [path for path, _, split in rows if split == "val"][:4]
    folder = tmp_path_factory.mktemp("odd")
    out = []
    for i, path in enumerate(val):
        img = Image.open(path)
        variants = {
            "same.png": img,
            "big.png": img.resize((37, 29), Image.Resampling.NEAREST),
            "rgba.png": img.convert("RGBA"),
            "palette.gif": img.convert("P"),
            "small.jpg": img.resize((11, 13)),
        }
        for name, variant in variants.items():
            target = folder / f"{i}_{name}"
            variant.save(target)
            out.append(target)
    return out


def eager_probs(run, paths) -> np.ndarray:
    """Training's own pipeline (mlcycle + albumentations) and the eager model."""
    from mlcycle.data.images import load_image
    from mlcycle.data.transforms import finish, resize
    from mlcycle.run.loader import Run

    loaded = Run(run)
    model = loaded.load_model().model.eval()
    info = loaded.data_info
    pipeline = finish([], info["mean"], info["std"])
    resizer = resize(*info["image_size"])
    x = torch.stack(
        [
            pipeline(image=resizer(image=load_image(p, info["channels"]))["image"])["image"]
            for p in paths
        ]
    )
    with torch.no_grad():
        return model(x).softmax(1).numpy()


def parse(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


@pytest.mark.parametrize("artifact", ["model.onnx", "model.ts"])
def test_predictions_match_the_eager_model(exported, odd_images, artifact, device):
    run, _, _ = exported
    names = json.loads((run / "export" / "model.json").read_text())["class_names"]
    blocked = NOT_FOR_ONNX if artifact.endswith(".onnx") else NOT_FOR_ONNX[:5]
    done = on_device(
        device, blocked, str(run / "export" / artifact), *map(str, odd_images), "--top-k", "3"
    )
    assert done.returncode == 0, done.stderr
    results = parse(done.stdout)
    assert [r["path"] for r in results] == [str(p) for p in odd_images]
    expected = eager_probs(run, odd_images)
    for result, probs in zip(results, expected, strict=True):
        assert result["class"] == names[int(probs.argmax())], result["path"]
        assert result["index"] == int(probs.argmax())
        got = {entry["class"]: entry["probability"] for entry in result["top_k"]}
        assert len(got) == 3
        for name, p in got.items():
            assert p == pytest.approx(float(probs[names.index(name)]), abs=2e-5)
        assert result["confidence"] == result["top_k"][0]["probability"]


def test_predict_imports_neither_mlcycle_nor_lightning(exported, odd_images, device):
    run, _, _ = exported
    # The blocker exits 99 when a blocked package was imported, and any import of one fails.
    done = on_device(
        device, NOT_FOR_ONNX, str(run / "export" / "model.int8.onnx"), str(odd_images[0])
    )
    assert done.returncode == 0, done.stderr
    (result,) = parse(done.stdout)
    assert result["class"] in {"blue", "green", "red"} and len(result["top_k"]) == 3


def test_scripts_predict_py_prints_what_the_device_prints(exported, odd_images, device):
    """In the repository, with mlcycle: the same lines as the edge folder alone."""
    run, _, _ = exported
    model = str(run / "export" / "model.onnx")
    images = list(map(str, odd_images[:6]))
    script = subprocess.run(
        [sys.executable, str(PREDICT), model, *images], capture_output=True, text=True, timeout=120
    )
    alone = on_device(device, NOT_FOR_ONNX, model, *images)
    assert script.returncode == alone.returncode == 0, script.stderr + alone.stderr
    assert script.stdout == alone.stdout and len(parse(script.stdout)) == 6
    refused = on_device(device, NOT_FOR_ONNX, model, images[0], "--db", "sqlite:///x.db")
    assert refused.returncode == 2 and "needs mlcycle installed" in refused.stderr


def test_unreadable_files_get_an_error_line_and_exit_1(exported, odd_images, tmp_path, device):
    run, _, _ = exported
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(odd_images[0], folder / "a.png")
    (folder / "b.png").write_text("this is not an image")
    (folder / "notes.txt").write_text("not an image extension: skipped in a folder")
    shutil.copy(odd_images[1], folder / "c.png")
    missing = tmp_path / "missing.png"
    done = on_device(
        device,
        NOT_FOR_ONNX,
        str(run / "export" / "model.onnx"),
        str(folder),
        str(missing),
        "--top-k",
        "1",
    )
    assert done.returncode == 1
    results = {r["path"]: r for r in parse(done.stdout)}
    assert list(results) == [str(folder / n) for n in ("a.png", "b.png", "c.png")] + [str(missing)]
    assert "not a readable image" in results[str(folder / "b.png")]["error"]
    assert results[str(missing)]["error"] == "file not found"
    for name in ("a.png", "c.png"):
        assert "error" not in results[str(folder / name)]
        assert len(results[str(folder / name)]["top_k"]) == 1
    assert "2 of 4 files could not be predicted" in done.stderr


def test_missing_model_json_is_a_usage_error(exported, odd_images, tmp_path):
    run, _, _ = exported
    lonely = tmp_path / "model.onnx"
    shutil.copy(run / "export" / "model.onnx", lonely)
    done = subprocess.run(
        [sys.executable, str(PREDICT), str(lonely), str(odd_images[0])],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().startswith("error: ") and "model.json" in done.stderr


def test_resize_is_opencv_bilinear_bit_for_bit():
    import cv2

    rng = np.random.default_rng(0)
    sizes = [(20, 20, 16, 16), (32, 32, 16, 16), (375, 500, 224, 224), (7, 39, 32, 10)]
    sizes += [tuple(int(v) for v in rng.integers(1, 80, 4)) for _ in range(40)]
    for sh, sw, h, w in sizes:
        for channels in (1, 3):
            img = rng.integers(0, 256, (sh, sw, channels), dtype=np.uint8)
            ref = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, channels)
            np.testing.assert_array_equal(decode.resize_bilinear(img, h, w), ref)


def tiny_export(folder, task: str, output: dict) -> tuple:
    """A hand-made three-output ONNX model (sigmoid of pooled 1x1 convolutions) and a
    model.json naming ``task`` and ``output``, as a plugin's exporter would write them."""
    folder.mkdir()
    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 1),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Sigmoid(),
    ).eval()
    example = torch.zeros(2, 1, 8, 8)
    torch.onnx.export(
        module, example, str(folder / "model.onnx"), input_names=["input"],
        output_names=["probabilities"], dynamic_axes={"input": {0: "batch"}}, dynamo=False,
    )  # fmt: skip
    spec = {"channels": 1, "height": 8, "width": 8, "mean": [0.5], "std": [0.25]}
    meta = {
        "format_version": 1,
        "task": task,
        "class_names": ["a|b", "c"],
        "input": {**spec, "shape": ["batch", 1, 8, 8]},
        "output": output,
    }
    (folder / "model.json").write_text(json.dumps(meta))
    images = []
    for i in range(3):
        path = folder / f"{i}.png"
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (11, 9), dtype=np.uint8)).save(
            path
        )
        images.append(path)
    return module, images


def expected_outputs(module, images) -> np.ndarray:
    spec = {"height": 8, "width": 8, "mean": [0.5], "std": [0.25]}
    x = np.stack([decode.preprocess(decode.load_image(p, 1), spec) for p in images])
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def test_a_multilabel_model_lists_labels_over_the_threshold(tmp_path, device):
    output = {"name": "probabilities", "kind": "labels", "labels": ["a", "b", "c"]}
    module, images = tiny_export(tmp_path / "ml", "multilabel", {**output, "threshold": 0.5})
    expected = expected_outputs(module, images)
    ranked = np.sort(expected.ravel())
    cut = float(ranked[len(ranked) // 2 - 1] + ranked[len(ranked) // 2]) / 2  # labels both sides
    model = str(tmp_path / "ml" / "model.onnx")
    done = on_device(device, NOT_FOR_ONNX, model, *map(str, images), "--threshold", str(cut))
    assert done.returncode == 0, done.stderr
    for result, probs in zip(parse(done.stdout), expected, strict=True):
        assert list(result["probabilities"]) == ["a", "b", "c"]
        for p, want in zip(result["probabilities"].values(), probs, strict=True):
            assert p == pytest.approx(float(want), abs=1e-5)
        assert result["labels"] == [n for n, p in zip("abc", probs, strict=True) if p >= cut]
        assert result["threshold"] == cut


def test_an_unknown_task_prints_its_raw_outputs(tmp_path, device):
    module, images = tiny_export(tmp_path / "new", "regression", {"name": "probabilities"})
    expected = expected_outputs(module, images)
    model = str(tmp_path / "new" / "model.onnx")
    done = on_device(device, NOT_FOR_ONNX, model, *map(str, images))
    assert done.returncode == 0, done.stderr
    results = parse(done.stdout)
    assert [r["path"] for r in results] == [str(p) for p in images]
    for result, want in zip(results, expected, strict=True):
        assert result["task"] == "regression" and list(result["outputs"]) == ["probabilities"]
        np.testing.assert_allclose(result["outputs"]["probabilities"], want, atol=1e-5)


def test_flags_in_either_spelling_and_one_line_for_an_unknown_one(capsys):
    from mlcycle.edge.predict import main, parser

    args = parser().parse_args(["model.onnx", "a.png", "--top_k", "2", "--batch_size=4"])
    assert args.top_k == 2 and args.batch_size == 4
    assert "--top_k" not in parser().format_help()
    with pytest.raises(SystemExit) as exit_info:
        main(["model.onnx", "a.png", "--top_q", "2"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert err.startswith("error: unrecognized arguments: --top_q 2")
