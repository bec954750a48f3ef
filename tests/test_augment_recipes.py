"""Mixup / CutMix of training batches and flip test-time augmentation on tiny data: mixed
targets are class probabilities and the run trains; evaluate averages the flips' softmax;
the exported TorchScript and ONNX graphs (INT8 too) hold the flips and equal the eager TTA
model; predict on the export needs nothing new; bad keys are one line, exit 2."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
import torch
from export_helpers import ROOT, export_run, train_run
from test_recipes import Tiny, trainer

from mlcycle.core.errors import UserError
from mlcycle.tasks.base import Task
from mlcycle.tasks.classification import ClassificationTask
from mlcycle.tasks.mixing import BatchMix
from mlcycle.tasks.tta import FlipTTA, flip_average, set_tta, tta_views


class Plain(ClassificationTask):
    """Without the galleries (they need a data module's images)."""

    def configure_callbacks(self):
        return Task.configure_callbacks(self)


def test_mixup_and_cutmix_give_soft_targets_that_sum_to_one():
    torch.manual_seed(0)
    x, y = torch.randn(8, 1, 16, 16), torch.arange(8) % 3
    for mix in (BatchMix(3, 0.4, None), BatchMix(3, None, 1.0), BatchMix(3, 0.4, 1.0)):
        mixed, target = mix(x, y)
        assert mixed.shape == x.shape and target.shape == (8, 3)
        assert torch.allclose(target.sum(1), torch.ones(8))
        assert ((target > 0) & (target < 1)).any()  # soft, not one-hot
        assert not torch.equal(mixed, x)
    unmixed = [BatchMix(3, 0.4, None, prob=0.01)(x, y)[1] for _ in range(20)]
    assert sum(torch.equal(t, torch.eye(3)[y]) for t in unmixed) >= 15


def test_a_run_with_mixup_and_cutmix_trains_on_mixed_batches():
    torch.manual_seed(0)
    model = Plain(
        num_classes=3, in_channels=1, arch_options={"width": 4}, lr=0.01,
        mixup=0.2, cutmix=1.0, label_smoothing=0.1, class_weights=[1.0, 2.0, 1.0],
    )  # fmt: skip
    start = model.model.head[-1].weight.clone()
    seen, mix = [], model.mix
    model.mix = lambda x, y: seen.append(mix(x, y)) or seen[-1]
    fit = trainer(2)
    fit.fit(model, datamodule=Tiny())
    assert len(seen) == 6  # every training batch, none of validation's
    assert all(t.shape == (len(x), 3) and not torch.equal(t, t.round()) for x, t in seen)
    assert torch.isfinite(fit.callback_metrics["train/loss"])
    assert 0 <= float(fit.callback_metrics["train/acc"]) <= 1  # argmax of the mixed target
    assert not torch.equal(model.model.head[-1].weight, start)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"mixup": 0}, "model.mixup=0 must be a Beta alpha"),
        ({"cutmix": 1.0, "mix_prob": 0}, "model.mix_prob=0 must be in (0, 1]"),
        ({"tta": "rotate"}, "model.tta='rotate' is not a flip"),
    ],
)
def test_bad_values_are_one_line(options, words):
    with pytest.raises(UserError, match=words.replace("(", r"\(").replace("]", r"\]")):
        Plain(num_classes=3, in_channels=1, **options)


def test_mixup_on_detection_is_one_line_exit_2(capsys):
    from mlcycle.commands.train import main

    with pytest.raises(SystemExit) as done:
        main(["--config", str(ROOT / "configs/detect_quickstart.yaml"), "--model.mixup=0.2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert done.value.code == 2 and len(err) == 1 and "model.mixup" in err[0]


def test_dense_flip_average_flips_the_logits_back():
    torch.manual_seed(0)
    net = torch.nn.Conv2d(1, 3, 3, padding=1)  # not flip-invariant
    x = torch.randn(2, 1, 8, 8)
    got = flip_average(net, x, tta_views(["hflip", "vflip"]), dense=True)
    probs = [net(x), net(x.flip(-1)).flip(-1), net(x.flip(-2)).flip(-2)]
    mean = torch.stack([p.softmax(1) for p in probs]).mean(0)
    assert torch.allclose(got.softmax(1), mean, atol=1e-6)
    assert tta_views("flip") == ["hflip"] and tta_views(None) is None


@pytest.fixture(scope="module")
def tta_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("tta")
    return train_run(base, 6, "--model.tta=flip", "--trainer.max_epochs=2")


def manual(run_dir, split: str = "val"):
    """The eager network on the split, alone and averaged with its horizontal flip."""
    from mlcycle.run.loader import Run

    run = Run(run_dir)
    net = run.load_model().model.eval()
    data = run.load_data(num_workers=0)
    x, y = zip(*[(s[0], s[1]) for s in data.dataset(split)], strict=True)
    x, y = torch.stack(x).float(), torch.tensor(y)
    with torch.no_grad():
        plain = net(x).softmax(1)
        mean = (plain + net(x.flip(-1)).softmax(1)) / 2
    return x, y, plain, mean


def nll(probs: torch.Tensor, y: torch.Tensor) -> float:
    return float(torch.nn.functional.nll_loss(probs.log(), y))


def test_evaluate_averages_the_flips(tta_run):
    from mlcycle.evaluators.run_split import evaluate

    with contextlib.redirect_stdout(io.StringIO()):
        result = evaluate(tta_run, "val")
    _, y, plain, mean = manual(tta_run)
    assert result["tta"] == ["hflip"]
    assert json.loads((tta_run / "eval_val.json").read_text())["tta"] == ["hflip"]
    assert result["metrics"]["loss"] == pytest.approx(nll(mean, y), abs=1e-5)
    assert result["metrics"]["loss"] != pytest.approx(nll(plain, y), abs=1e-5)
    with contextlib.redirect_stdout(io.StringIO()):
        without = evaluate(tta_run, "val", tta="none")  # evaluate's --tta overrides the run's
    assert without["tta"] is None
    assert without["metrics"]["loss"] == pytest.approx(nll(plain, y), abs=1e-5)


def test_tta_is_refused_where_the_task_has_none():
    from mlcycle.tasks.detection import DetectionTask
    from mlcycle.tasks.segmentation import SegmentationTask
    from mlcycle.tasks.tta import takes_tta

    assert takes_tta(ClassificationTask) and takes_tta(SegmentationTask)
    assert not takes_tta(DetectionTask)
    with pytest.raises(UserError, match="--tta='turn' is not a flip"):
        set_tta(Plain(num_classes=3, in_channels=1), "turn")


def test_the_export_holds_the_flips_and_predict_needs_nothing_new(tta_run, tmp_path):
    import onnxruntime as ort

    from mlcycle.edge.predict import main as predict
    from mlcycle.run.loader import Run

    result, _ = export_run(tta_run, "--quantize", "int8", "--calibration-images", "8")
    out = result["out"]
    meta = json.loads((out / "model.json").read_text())
    report = json.loads((out / "verification.json").read_text())
    assert meta["tta"] == ["hflip"] and report["tta"] == ["hflip"] and report["passed"]
    assert {r["precision"] for r in report["artifacts"]} == {"fp32", "int8"}
    x, _, _, mean = manual(tta_run)
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {session.get_inputs()[0].name: x[:4].numpy()})[0]
    scripted = torch.jit.load(str(out / "model.ts"))
    with torch.no_grad():
        eager = FlipTTA(Run(tta_run).load_model().model.eval(), ["hflip"])(x[:4])
        ts_out = scripted(x[:4])
    assert np.abs(onnx_out - eager.numpy()).max() < 1e-4
    assert torch.allclose(ts_out, eager, atol=1e-4)
    assert np.allclose(torch.from_numpy(onnx_out).softmax(1), mean[:4], atol=1e-5)
    image = next((tta_run.parent / "images" / "red").glob("*.png"))
    lines = io.StringIO()
    with contextlib.redirect_stdout(lines):
        assert predict([str(out / "model.onnx"), str(image)]) == 0
    assert json.loads(lines.getvalue().splitlines()[0])["class"] in {"red", "green", "blue"}


def test_segmentation_tta_in_evaluate_and_the_exported_graph(tmp_path):
    import onnxruntime as ort

    from mlcycle.commands.train import main as train
    from mlcycle.data.shapes import write_shape_masks
    from mlcycle.evaluators.run_split import evaluate
    from mlcycle.run.loader import Run

    root = write_shape_masks(tmp_path / "shapes", count=16, size=32)
    args = [
        f"--config={ROOT / 'configs/segment_quickstart.yaml'}",
        "--data.source=masks",
        f"--data.root={root}",
        "--data.image_size=32",
        "--data.batch_size=8",
        "--model.arch_options={width: 8, depth: 2}",
        "--model.tta=[hflip, vflip]",
        "--trainer.max_epochs=1",
        "--trainer.enable_progress_bar=false",
        f"--run_dir={tmp_path / 'run'}",
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        run = train(args)
        assert evaluate(run, "val")["tta"] == ["hflip", "vflip"]
    result, _ = export_run(run, "--format", "onnx")
    assert result["model_json"]["tta"] == ["hflip", "vflip"] and result["report"]["passed"]
    net = Run(run).load_model().eval()
    x = torch.stack([s[0] for s in Run(run).load_data(num_workers=0).dataset("val")]).float()
    with torch.no_grad():
        views = [net(x), net(x.flip(-1)).flip(-1), net(x.flip(-2)).flip(-2)]
    mean = torch.stack([v.softmax(1) for v in views]).mean(0)
    session = ort.InferenceSession(str(result["out"] / "model.onnx"))
    got = torch.from_numpy(session.run(None, {"input": x.numpy()})[0])
    assert torch.allclose(got.softmax(1), mean, atol=1e-5)
    assert not torch.allclose(views[0].softmax(1), mean, atol=1e-3)  # the flips count
