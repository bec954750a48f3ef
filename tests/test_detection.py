"""Detection: COCO and YOLO parse, boxes move with their images, bad input is skipped or stops,
a real run goes through train.py and evaluate.py, and the mAP agrees with pycocotools."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mlcycle.core.errors import UserError
from mlcycle.data.detection import DetectionData
from mlcycle.data.shapes import write_shape_boxes
from mlcycle.evaluators.detection import evaluate_detection
from mlcycle.reports.mask_box_errors import match_boxes
from mlcycle.tasks.detection import DetectionTask

SHAPES = ["circle", "square", "triangle"]


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("det") / "shapes"
    return write_shape_boxes(root, count=40, size=64, radius=(5, 12), negatives=0.2)


def coco_boxes(root: Path) -> dict[str, np.ndarray]:
    """``{file name: (n, 4) x1, y1, x2, y2}`` from the COCO file."""
    coco = json.loads((root / "annotations.json").read_text())
    names = {im["id"]: Path(im["file_name"]).name for im in coco["images"]}
    boxes: dict[str, list] = {n: [] for n in names.values()}
    for a in coco["annotations"]:
        x, y, w, h = a["bbox"]
        boxes[names[a["image_id"]]].append([x, y, x + w, y + h])
    return {n: np.array(b, float).reshape(-1, 4) for n, b in boxes.items()}


def test_coco_parses_and_boxes_scale_with_the_image(coco_root):
    data = DetectionData(
        source="coco", annotations=str(coco_root / "annotations.json"), image_size=[32, 96]
    )
    assert data.class_names == SHAPES and data.category_ids == [1, 2, 3] and data.num_classes == 3
    truth = coco_boxes(coco_root)
    assert len(data.index.samples) == 40 and not data.index.skipped
    negatives = 0
    for pos, sample in enumerate(data.index.samples):
        assert np.allclose(sample.boxes, truth[sample.path.name])
        prepared = data.prepared(pos)
        assert prepared.image.shape == (32, 96, 3)
        assert np.allclose(
            prepared.boxes, truth[sample.path.name] * [1.5, 0.5, 1.5, 0.5], atol=1e-4
        )
        negatives += len(sample.labels) == 0
    assert negatives >= 2  # images without objects are valid negatives
    x, targets, _ = next(iter(data.val_dataloader()))
    assert x.shape[1:] == (3, 32, 96) and isinstance(targets, list)
    assert targets[0]["boxes"].dtype == torch.float32 and targets[0]["labels"].dtype == torch.long


def write_yolo(coco_root: Path, root: Path, split_folders: bool = False) -> Path:
    coco = json.loads((coco_root / "annotations.json").read_text())
    names = {im["id"]: im for im in coco["images"]}
    lines: dict[int, list[str]] = {}
    for a in coco["annotations"]:
        im = names[a["image_id"]]
        x, y, w, h = a["bbox"]
        W, H = im["width"], im["height"]
        lines.setdefault(a["image_id"], []).append(
            f"{a['category_id'] - 1} {(x + w / 2) / W:.6f} {(y + h / 2) / H:.6f} {w / W:.6f} {h / H:.6f}"
        )
    for k, (image_id, im) in enumerate(sorted(names.items())):
        sub = ("val" if k % 4 == 0 else "train") if split_folders else ""
        (root / "images" / sub).mkdir(parents=True, exist_ok=True)
        (root / "labels" / sub).mkdir(parents=True, exist_ok=True)
        name = Path(im["file_name"]).name
        (root / "images" / sub / name).write_bytes((coco_root / im["file_name"]).read_bytes())
        if image_id in lines:  # a negative has no label file at all
            (root / "labels" / sub / name).with_suffix(".txt").write_text(
                "\n".join(lines[image_id]) + "\n"
            )
    (root / "classes.txt").write_text("\n".join(SHAPES) + "\n")
    return root


def test_yolo_parses_like_the_coco_file(coco_root, tmp_path):
    root = write_yolo(coco_root, tmp_path / "yolo")
    data = DetectionData(source="yolo", root=str(root), image_size=64)
    assert data.class_names == SHAPES and data.category_ids == [0, 1, 2]
    truth = coco_boxes(coco_root)
    assert len(data.index.samples) == 40 and not data.index.skipped
    for sample in data.index.samples:
        assert np.allclose(sample.boxes, truth[sample.path.name], atol=1e-3)
    split = write_yolo(coco_root, tmp_path / "yolo_splits", split_folders=True)
    data = DetectionData(source="yolo", root=str(split), image_size=64, test_fraction=0)
    assert data.index.splits.count("val") == 10 and set(data.index.splits) == {"train", "val"}


def test_augmentation_moves_boxes_with_the_image(tmp_path):
    """Each object is a rectangle of its own grey value; after flips and shifts every box must
    still frame exactly the pixels of its value, clipped at the border or dropped when gone."""
    root = tmp_path / "rects"
    (root / "images").mkdir(parents=True)
    images, annotations = [], []
    rng = np.random.default_rng(3)
    for i in range(12):
        image = np.zeros((40, 40), np.uint8)
        for k, value in enumerate((80, 160, 240)):
            x, y = int(rng.integers(0, 30)), int(rng.integers(k * 13, k * 13 + 4))
            w, h = int(rng.integers(4, 10)), 6
            image[y : y + h, x : x + w] = value
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i + 1,
                    "category_id": k + 1,
                    "bbox": [x, y, w, h],
                }
            )
        Image.fromarray(image).save(root / "images" / f"{i}.png")
        images.append({"id": i + 1, "file_name": f"images/{i}.png", "width": 40, "height": 40})
    categories = [{"id": k + 1, "name": str(v)} for k, v in enumerate((80, 160, 240))]
    (root / "coco.json").write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories})
    )
    transforms = [
        {"name": "HorizontalFlip", "p": 0.5},
        {"name": "Affine", "translate_px": {"x": [-20, 20], "y": 0}, "interpolation": 0, "p": 1.0},
    ]
    data = DetectionData(
        source="coco",
        annotations=str(root / "coco.json"),
        image_size=40,
        mean=[0.0],
        std=[1 / 255],
        train_transforms=transforms,
        min_visibility=0.3,
        val_fraction=0.2,
        test_fraction=0,
    )
    dataset = data.dataset("train", augment=True)
    kept = dropped = clipped = 0
    for i in [i for _ in range(6) for i in range(len(dataset))]:  # six passes, new draws each
        x, target, pos = dataset[i]
        pixels = x[0].round().long()
        present = {int(k): b for k, b in zip(target["labels"], target["boxes"], strict=True)}
        for k, value in enumerate((80, 160, 240)):
            ys, xs = torch.nonzero(pixels == value, as_tuple=True)
            original = data.prepared(pos).boxes[k]
            visible = len(xs) / ((original[2] - original[0]) * (original[3] - original[1]))
            if k not in present:
                assert visible < 0.3  # dropped: (nearly) all of it left the image
                dropped += 1
                continue
            box = present[k].tolist()
            extent = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
            assert box == pytest.approx(extent, abs=1e-3)
            assert 0 <= box[0] < box[2] <= 40
            kept += 1
            clipped += visible < 1
    assert kept and dropped and clipped


def write_bad_coco(coco_root: Path, root: Path) -> Path:
    coco = json.loads((coco_root / "annotations.json").read_text())
    (root / "images").mkdir(parents=True)
    for im in coco["images"]:
        (root / im["file_name"]).write_bytes((coco_root / im["file_name"]).read_bytes())
    with_objects = sorted({a["image_id"] for a in coco["annotations"]})
    first = next(a for a in coco["annotations"] if a["image_id"] == with_objects[0])
    first["bbox"][2] = -3  # negative width
    unknown = next(a for a in coco["annotations"] if a["image_id"] == with_objects[1])
    unknown["category_id"] = 9
    missing = coco["images"][-1]
    (root / missing["file_name"]).unlink()
    coco["images"][-2]["width"] = 50  # the file is 64 wide
    coco["annotations"].append(
        {"id": 999, "image_id": 12345, "category_id": 1, "bbox": [1, 1, 2, 2]}
    )
    (root / "annotations.json").write_text(json.dumps(coco))
    return root


def test_bad_detection_input_is_skipped_and_listed(coco_root, tmp_path):
    root = write_bad_coco(coco_root, tmp_path / "bad")
    data = DetectionData(source="coco", annotations=str(root / "annotations.json"), image_size=64)
    reasons = [r for _, r in data.index.skipped]
    paths = [Path(p).name for p, _ in data.index.skipped]
    assert len(data.index.samples) == 36 and len(reasons) == 5
    assert any("has a box of negative width (-3)" in r for r in reasons)
    assert any("category_id 9, which 'categories' does not list" in r for r in reasons)
    assert any("but the file does not exist" in r for r in reasons)
    assert any("image is 64x64 but annotations.json says 50x64" in r for r in reasons)
    assert any("refers to image id 12345" in r for r in reasons) and "annotations.json" in paths
    data.write_records(tmp_path)
    with (tmp_path / "skipped_files.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == 5


def test_bad_yolo_line_is_skipped(coco_root, tmp_path):
    root = write_yolo(coco_root, tmp_path / "yolo")
    label = sorted((root / "labels").glob("*.txt"))[0]
    label.write_text("0 0.5 0.5 -0.2 0.1\n")
    other = sorted((root / "labels").glob("*.txt"))[1]
    other.write_text("7 0.5 0.5 0.2 0.1\n")
    data = DetectionData(source="yolo", root=str(root), image_size=64)
    reasons = dict(data.index.skipped)
    assert (
        "line 1: box of negative width (-0.2)"
        in reasons[str(root / "images" / f"{label.stem}.png")]
    )
    assert "class 7 is not one of 0..2" in reasons[str(root / "images" / f"{other.stem}.png")]


def test_broken_annotation_files_stop(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        _ = DetectionData(source="coco", annotations=str(tmp_path / "none.json")).index
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [}')
    with pytest.raises(UserError, match="'.*bad.json' is not valid JSON"):
        _ = DetectionData(source="coco", annotations=str(bad)).index
    bad.write_text('{"images": [], "annotations": []}')
    with pytest.raises(UserError, match="no 'categories' list"):
        _ = DetectionData(source="coco", annotations=str(bad)).index


def test_box_matching_counts_false_positives_and_misses():
    target = {
        "boxes": torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]]),
        "labels": torch.tensor([0, 1]),
    }
    pred = {
        "boxes": torch.tensor(
            [[1.0, 1, 10, 10], [20, 20, 30, 30], [0, 0, 10, 10], [40, 40, 50, 50]]
        ),
        "scores": torch.tensor([0.9, 0.8, 0.7, 0.2]),
        "labels": torch.tensor([0, 0, 0, 1]),
    }
    errors = match_boxes(pred, target, score_threshold=0.5)
    # A duplicate of a found object and a wrong class are both false positives.
    assert errors.correct == [0] and errors.false_positives == [1, 2] and errors.missed == [1]


class NoisyTruth(DetectionTask):
    """Stands in for a trained detector: the val objects, shifted and scored at random, with
    misses and false positives, in the order the val loader gives the images. A real task, so
    the evaluator runs it through ``Trainer.predict``."""

    def __init__(self, data: DetectionData, split: str) -> None:
        names = list(data.class_names)
        super().__init__(num_classes=len(names), in_channels=3, class_names=names)
        self.data, self.queue = data, list(data.index.positions[split])
        self.rng = np.random.default_rng(0)

    def forward(self, x: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        out = []
        for _ in range(len(x)):
            item = self.data.prepared(self.queue.pop(0))
            keep = self.rng.random(len(item.boxes)) > 0.2
            boxes = item.boxes[keep] + self.rng.normal(0, 1.5, (int(keep.sum()), 4))
            labels = item.labels[keep]
            extra = self.rng.integers(0, 3)
            corners = self.rng.uniform(0, 30, (extra, 2))
            boxes = np.concatenate([boxes, np.concatenate([corners, corners + 10], 1)])
            labels = np.concatenate([labels, self.rng.integers(0, 3, extra)])
            out.append(
                {
                    "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                    "scores": torch.tensor(
                        self.rng.uniform(0.05, 1, len(labels)), dtype=torch.float32
                    ),
                    "labels": torch.tensor(labels, dtype=torch.long),
                }
            )
        return out


def cocoeval_stats(annotations: Path, predictions: Path, image_ids: list[int]) -> np.ndarray:
    truth = COCO(str(annotations))
    evaluation = COCOeval(truth, truth.loadRes(str(predictions)), iouType="bbox")
    evaluation.params.imgIds = image_ids
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    return evaluation.stats


def test_map_agrees_with_pycocotools(coco_root, tmp_path):
    """The evaluator scores on the images' own pixels; pycocotools, given its COCO results file
    and the original annotation file, finds the same mAP (the images are resized for the model
    to a non-square size, so the boxes go through a real round trip)."""
    data = DetectionData(
        source="coco",
        annotations=str(coco_root / "annotations.json"),
        image_size=[48, 80],
        val_fraction=0.5,
        test_fraction=0,
    )
    result = evaluate_detection(NoisyTruth(data, "val"), data, "val", tmp_path)
    ids = [data.index.samples[p].image_id for p in data.index.positions["val"]]
    stats = cocoeval_stats(coco_root / "annotations.json", tmp_path / "predictions_val.json", ids)
    metrics = result["metrics"]
    assert 0.2 < metrics["map_50"] < 0.95  # a real precision-recall curve, not a trivial one
    assert metrics["map"] == pytest.approx(stats[0], abs=1e-3)
    assert metrics["map_50"] == pytest.approx(stats[1], abs=1e-3)
    assert metrics["map_75"] == pytest.approx(stats[2], abs=1e-3)
    # The ground truth it wrote scores the same.
    again = cocoeval_stats(
        tmp_path / "ground_truth_val.json", tmp_path / "predictions_val.json", ids
    )
    assert np.allclose(again[:3], stats[:3], atol=1e-6)
    assert (tmp_path / "detection_errors_val.png").stat().st_size > 1000


def test_detection_run_trains_evaluates_and_agrees_with_pycocotools(coco_root, tmp_path, capsys):
    from mlcycle.commands.evaluate import main as evaluate
    from mlcycle.commands.train import main as train

    run = train(
        [
            "--config",
            "configs/detect_quickstart.yaml",
            "--data.source=coco",
            f"--data.annotations={coco_root / 'annotations.json'}",
            f"--data.root={coco_root}",
            "--data.image_size=64",
            "--data.batch_size=8",
            "--trainer.max_epochs=1",
            "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false",
            f"--run_dir={tmp_path / 'run'}",
        ]
    )
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["monitor"] == "val/map" and metrics["status"] == "finished"
    for key in ("val/map", "val/map_50", "val/map_75", "train/loss", "val/loss"):
        assert key in metrics
    with (run / "history.csv").open() as fh:
        history = list(csv.DictReader(fh))
    assert float(history[-1]["val/loss"]) > 0 and float(history[-1]["train/loss"]) > 0
    printed = capsys.readouterr().out
    assert "epoch 1/1  train loss" in printed and " map_50 " in printed
    info = json.loads((run / "data.json").read_text())
    assert info["class_names"] == SHAPES and info["images_without_objects"] >= 2
    assert (run / "detection_errors.png").stat().st_size > 1000
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    assert "val/detection_errors" in events.Tags()["images"]
    assert {"val/map", "val/map_50", "train/loss"} <= set(events.Tags()["scalars"])

    result = evaluate(["--run", str(run), "--split", "val"])
    saved = json.loads((run / "eval_val.json").read_text())
    assert saved["metrics"]["map"] == pytest.approx(metrics["val/map"], abs=1e-4)
    with (run / "splits.csv").open() as fh:
        ids = [int(r["image_id"]) for r in csv.DictReader(fh) if r["split"] == "val"]
    assert result["images"] == len(ids)
    rows = json.loads((run / "predictions_val.json").read_text())
    assert rows and set(rows[0]) == {"image_id", "category_id", "bbox", "score"}
    stats = cocoeval_stats(coco_root / "annotations.json", run / "predictions_val.json", ids)
    assert saved["metrics"]["map"] == pytest.approx(stats[0], abs=1e-3)
    assert saved["metrics"]["map_50"] == pytest.approx(stats[1], abs=1e-3)
    assert "predictions_val.json" in capsys.readouterr().out


def test_validation_loss_leaves_the_model_as_it_was():
    task = DetectionTask(num_classes=2, in_channels=3, arch="fcos_small").eval()
    before = {k: v.clone() for k, v in task.state_dict().items()}
    x = torch.rand(2, 3, 64, 64)
    targets = [
        {"boxes": torch.tensor([[4.0, 4.0, 30.0, 30.0]]), "labels": torch.tensor([1])},
        {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)},
    ]
    losses = task.losses(x, targets)
    assert {"classification", "bbox_regression", "bbox_ctrness"} <= set(losses)
    assert all(torch.isfinite(v) and not v.requires_grad for v in losses.values())
    assert not any(m.training for m in task.modules())
    after = task.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN statistics untouched
