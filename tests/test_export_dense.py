"""export.py on tiny segmentation and detection runs: ONNX with a dynamic batch for masks, the
whole detector with its post-processing for boxes, both verified against eager."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from export_helpers import NOT_FOR_ONNX, device_folder, export_run, on_device
from PIL import Image
from torch import nn

from mlcycle.data.shapes import write_shape_boxes, write_shape_masks
from mlcycle.export import run_export
from mlcycle.export.detection import match_detections
from mlcycle.run.loader import Run

QUIET = [
    "--trainer.max_epochs=1",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
]


def _train(args: list[str]) -> Path:
    from mlcycle.commands.train import main

    with contextlib.redirect_stdout(io.StringIO()):
        return Path(main([*args, *QUIET]))


@pytest.fixture(scope="module")
def seg_run(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("seg_export")
    root = write_shape_masks(base / "shapes", count=24, size=32)
    return _train(
        [
            "--config=configs/segment_quickstart.yaml",
            "--data.source=masks",
            f"--data.root={root}",
            "--data.image_size=32",
            "--data.batch_size=8",
            "--model.arch_options={width: 8, depth: 2}",
            f"--run_dir={base / 'run'}",
        ]
    )


@pytest.fixture(scope="module")
def det_run(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("det_export")
    root = write_shape_boxes(base / "shapes", count=30, size=64, radius=(5, 12), negatives=0.2)
    return _train(
        [
            "--config=configs/detect_quickstart.yaml",
            "--data.source=coco",
            f"--data.annotations={root / 'annotations.json'}",
            f"--data.root={root}",
            "--data.image_size=64",
            "--data.batch_size=8",
            # a low threshold keeps many detections (ties and near-misses included) to compare
            "--model.arch_options={score_thresh: 0.01, detections_per_img: 50}",
            f"--run_dir={base / 'run'}",
        ]
    )


def _op_types(graph: onnx.GraphProto) -> set[str]:
    """Operators of a graph and of its subgraphs (``If`` branches, ``Loop`` bodies)."""
    ops = set()
    for node in graph.node:
        ops.add(node.op_type)
        for attr in node.attribute:
            for sub in [attr.g, *attr.graphs] if attr.HasField("g") else attr.graphs:
                ops |= _op_types(sub)
    return ops


def _val_images(run: Path, count: int) -> torch.Tensor:
    data = Run(run).load_data(num_workers=0)
    val = data.dataset("val")
    return torch.stack([val[i][0] for i in range(min(count, len(val)))]).float()


def test_segmentation_exports_with_a_dynamic_batch_and_verifies(seg_run):
    result, printed = export_run(seg_run, "--quantize", "int8", "--calibration-images", "8")
    out = seg_run / "export"
    report = json.loads((out / "verification.json").read_text())
    assert report["passed"] and result["report"]["passed"]
    assert [r["file"] for r in report["artifacts"]] == ["model.ts", "model.onnx", "model.int8.onnx"]
    fp32 = report["artifacts"][1]
    assert fp32["max_abs_logit_diff"] <= 1e-4 and fp32["pixel_agreement"] == 1.0
    assert fp32["miou"] == pytest.approx(report["eager"]["miou"], abs=1e-6)
    assert "recorded_val_iou" in report and "mIoU" in printed and "dynamic batch" in printed

    meta = json.loads((out / "model.json").read_text())
    assert meta["task"] == "segmentation" and meta["arch"] == "unet"
    assert meta["output"]["shape"] == ["batch", 4, 32, 32]
    assert meta["onnx"]["dynamic_axes"] == {"input": [0], "logits": [0]}

    # Any batch size runs, and gives the eager model's logits.
    proto = onnx.load(str(out / "model.onnx"))
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param
    x = _val_images(seg_run, 3)
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        want = Run(seg_run).load_model()(x).numpy()
    assert got.shape == (len(x), 4, 32, 32)
    np.testing.assert_allclose(got, want, atol=1e-4)
    one = session.run(None, {"input": x[:1].numpy()})[0]
    np.testing.assert_allclose(one, want[:1], atol=1e-4)


class Shifted(nn.Module):
    """Segmentation logits with one class nudged: argmax flips on some pixels."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        return out + torch.tensor([0.0, 3.0, 0.0, 0.0]).view(1, -1, 1, 1)


def test_segmentation_verification_failure_names_the_artifact(
    seg_run, tmp_path, monkeypatch, capsys
):
    real = run_export.export_onnx
    monkeypatch.setattr(
        run_export, "export_onnx", lambda model, *a, **k: real(Shifted(model), *a, **k)
    )
    with pytest.raises(SystemExit) as exit_info:
        export_run(seg_run, "--out", str(tmp_path / "bad"))
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.onnx: max |logit diff| 3 exceeds 0.0001" in err[0]
    assert "pixels differs from eager" in err[0] and "model.ts" not in err[0]


def test_detection_exports_with_post_processing_and_matches_eager(det_run):
    result, printed = export_run(det_run)
    out = det_run / "export"
    report = json.loads((out / "verification.json").read_text())
    assert report["passed"], report
    assert report["eager_detections"] > 0
    for row in report["artifacts"]:
        assert row["matched"] == report["eager_detections"] == row["detections"]
        assert row["map"] == pytest.approx(report["eager"]["map"], abs=1e-6)
    assert "batch 1" in printed and "mAP@0.5" in printed

    meta = json.loads((out / "model.json").read_text())
    assert meta["task"] == "detection" and meta["input"]["shape"] == [1, 3, 64, 64]
    assert [o["name"] for o in meta["output"]["outputs"]] == ["boxes", "scores", "labels"]
    post = meta["output"]["post_processing"]
    assert post == {
        "included": True,
        "score_threshold": 0.01,
        "nms_iou_threshold": 0.5,
        "max_detections": 50,
    }
    assert meta["output"]["category_ids"] == [1, 2, 3]

    # The graph holds NMS and returns final detections, labels from 0, as the task does.
    proto = onnx.load(str(out / "model.onnx"))
    assert "NonMaxSuppression" in _op_types(proto.graph)
    assert [o.name for o in proto.graph.output] == ["boxes", "scores", "labels"]
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    task = Run(det_run).load_model()
    for x in _val_images(det_run, 3):
        boxes, scores, labels = session.run(None, {"input": x[None].numpy()})
        with torch.no_grad():
            want = task(x[None])[0]
        assert boxes.shape == (len(want["boxes"]), 4)
        np.testing.assert_allclose(boxes, want["boxes"].numpy(), atol=1e-3)
        np.testing.assert_allclose(scores, want["scores"].numpy(), atol=1e-4)
        assert labels.tolist() == want["labels"].tolist() and labels.min(initial=0) >= 0


class BoxesMoved(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):
        boxes, scores, labels = self.model(x)
        return boxes + 0.5, scores, labels


def test_detection_verification_catches_moved_boxes(det_run, tmp_path, monkeypatch, capsys):
    real = run_export.export_onnx
    monkeypatch.setattr(
        run_export, "export_onnx", lambda model, *a, **k: real(BoxesMoved(model), *a, **k)
    )
    with pytest.raises(SystemExit) as exit_info:
        export_run(det_run, "--format", "onnx", "--out", str(tmp_path / "bad"))
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.onnx:" in err[0] and "no counterpart" in err[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--quantize", "int8"], "not offered for detection models"),
        (["--exporter", "dynamo", "--opset", "18"], "--exporter torchscript only"),
        (["--opset", "9"], "too old for a detector"),
    ],
)
def test_detection_refuses_what_it_cannot_verify(det_run, tmp_path, capsys, args, message):
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as exit_info:
        export_run(det_run, "--out", str(out), *args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert not out.exists()


def _dets(boxes: list, scores: list, labels: list) -> tuple[np.ndarray, ...]:
    return (
        np.array(boxes, np.float32).reshape(-1, 4),
        np.array(scores, np.float32),
        np.array(labels, np.int64),
    )


def test_detection_matching_excuses_only_cut_off_ties():
    a = [[0, 0, 10, 10], [20, 20, 30, 30], [5, 5, 9, 9]]
    ref = _dets(a, [0.9, 0.5, 0.05], [0, 1, 2])
    # the same detections, in another order, within tolerance
    same = match_detections(ref, _dets(a[::-1], [0.05, 0.5, 0.9], [2, 1, 0]), 1e-3, 1e-4)
    assert same["matched"] == 3 and same["unmatched"] == 0
    # the lowest-scoring one missing: a tie at the threshold, excused
    cut = match_detections(ref, _dets(a[:2], [0.9, 0.5], [0, 1]), 1e-3, 1e-4)
    assert cut["unmatched"] == 1 and cut["unmatched_beyond_ties"] == 0
    # a confident detection with another label, or moved by a pixel: not excused
    label = match_detections(ref, _dets(a, [0.9, 0.5, 0.05], [0, 2, 2]), 1e-3, 1e-4)
    moved = match_detections(ref, _dets([[1, 0, 11, 10], *a[1:]], [0.9, 0.5, 0.05], [0, 1, 2]), 1e-3, 1e-4)  # fmt: skip
    assert label["unmatched_beyond_ties"] == 2 and moved["unmatched_beyond_ties"] == 2


def _val_paths(run: Path, count: int) -> list[Path]:
    rows = [line.split(",") for line in (run / "splits.csv").read_text().splitlines()[1:]]
    return [Path(row[0]) for row in rows if row[-1] == "val"][:count]


@pytest.fixture(scope="module")
def device(tmp_path_factory) -> Path:
    return device_folder(tmp_path_factory.mktemp("device"))


def test_predict_writes_masks_at_each_images_size(seg_run, tmp_path, device):
    export_run(seg_run, "--format", "onnx", "--out", str(tmp_path / "export"))
    paths = _val_paths(seg_run, 3)
    big = tmp_path / "big.png"
    Image.open(paths[0]).resize((48, 40)).save(big)
    masks = tmp_path / "masks"
    done = on_device(
        device, NOT_FOR_ONNX, str(tmp_path / "export" / "model.onnx"), *map(str, paths),
        str(big), "--masks-dir", str(masks),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 4 and lines[-1]["size"] == [48, 40]
    assert Image.open(lines[-1]["mask"]).size == (48, 40)
    with torch.no_grad():
        want = Run(seg_run).load_model()(_val_images(seg_run, 3)).argmax(1).numpy()
    for line, expected in zip(lines, want, strict=False):
        got = np.asarray(Image.open(line["mask"]))
        assert (got == expected).mean() > 0.999
        assert sum(line["class_shares"].values()) == pytest.approx(1.0, abs=1e-4)


def test_predict_never_writes_into_a_used_folder(seg_run, tmp_path, device):
    export_run(seg_run, "--format", "onnx", "--out", str(tmp_path / "export"))
    model = str(tmp_path / "export" / "model.onnx")
    image = str(_val_paths(seg_run, 1)[0])
    used = tmp_path / "used"
    used.mkdir()
    (used / "mine.png").write_bytes(b"user data")
    for extra, message in [([], "pass --masks-dir"), (["--masks-dir", str(used)], "not empty")]:
        done = on_device(device, NOT_FOR_ONNX, model, image, *extra)
        assert done.returncode == 2 and message in done.stderr
    assert [p.name for p in used.iterdir()] == ["mine.png"]
    assert (used / "mine.png").read_bytes() == b"user data"


def test_predict_lists_boxes_in_the_images_own_pixels(det_run, tmp_path, device):
    export_run(det_run, "--format", "onnx", "--out", str(tmp_path / "export"))
    path = _val_paths(det_run, 1)[0]
    twice = tmp_path / "twice.png"
    image = Image.open(path)
    image.resize((image.width * 2, image.height * 2), Image.Resampling.BILINEAR).save(twice)
    model = str(tmp_path / "export" / "model.onnx")
    done = on_device(device, NOT_FOR_ONNX, model, str(path), str(twice), "--min-score", "0")
    assert done.returncode == 0, done.stderr
    same, big = (json.loads(line) for line in done.stdout.splitlines())
    with torch.no_grad():
        want = Run(det_run).load_model()(_val_images(det_run, 1))[0]
    top = same["detections"][:5]
    assert len(top) == min(5, len(want["scores"])) > 0
    for found, box, score, label in zip(top, want["boxes"], want["scores"], want["labels"], strict=False):  # fmt: skip
        assert found["index"] == int(label) and found["score"] == pytest.approx(
            float(score), abs=1e-3
        )
        np.testing.assert_allclose(found["box"], box.numpy(), atol=0.02)
    assert big["size"] == [image.width * 2, image.height * 2]
    assert all(0 <= v <= image.width * 2 for d in big["detections"] for v in d["box"])


ARCHS = [
    ("segmentation", "lraspp_mobilenet_v3_large"),
    ("segmentation", "deeplabv3_mobilenet_v3_large"),
    pytest.param("segmentation", "fcn_resnet50", marks=pytest.mark.slow),
    ("detection", "fasterrcnn_mobilenet_v3_large_fpn"),
    ("detection", "ssdlite320_mobilenet_v3_large"),
    pytest.param("detection", "retinanet_resnet50_fpn", marks=pytest.mark.slow),
    pytest.param("detection", "fcos_resnet50_fpn", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("task", "arch"), ARCHS)
def test_every_torchvision_architecture_exports_and_verifies(task, arch, tmp_path):
    """Untrained (random) weights: the hardest case for detection, whose scores tie a lot."""
    from types import SimpleNamespace

    from mlcycle.export import export_onnx, export_torchscript
    from mlcycle.export.exporters import Verification, export_for
    from mlcycle.export.verify import Artifact
    from mlcycle.tasks.detection import DetectionTask
    from mlcycle.tasks.segmentation import SegmentationTask

    torch.manual_seed(0)
    size = 64 if task == "segmentation" else 96
    if task == "segmentation":
        model = SegmentationTask(num_classes=3, in_channels=3, arch=arch).eval()
        data = [
            (torch.randn(3, size, size), torch.randint(0, 3, (size, size)), i) for i in range(3)
        ]
    else:
        model = DetectionTask(num_classes=2, in_channels=3, arch=arch).eval()
        truth = {"boxes": torch.tensor([[2.0, 2.0, 30.0, 30.0]]), "labels": torch.tensor([1])}
        data = [(torch.randn(3, size, size), truth, i) for i in range(2)]
    exporter = export_for(task)
    module = exporter.module(model).eval()
    x = next(exporter.batches(data, 2))[0]
    ts = export_torchscript(module, x, tmp_path / "m.ts", len(exporter.io.outputs))
    onnx_path = export_onnx(module, x, tmp_path / "m.onnx", io=exporter.io)
    args = SimpleNamespace(
        batch_size=2, max_logit_diff=1e-4, max_f1_drop=0.01, max_box_diff=1e-3, max_score_diff=1e-4
    )
    artifacts = [Artifact(ts, "torchscript", "fp32"), Artifact(onnx_path, "onnx", "fp32")]
    job = Verification(module, artifacts, data, {"class_names": ["a", "b", "c"]}, args)
    report = exporter.verify(job)
    assert report["passed"], exporter.failures(report)
