"""Segmentation: mask folders and VOC parse, masks move with their images, bad masks are skipped,
and a real run goes through train.py and evaluate.py."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mlcycle.core.errors import UserError
from mlcycle.data.segmentation import SegmentationData
from mlcycle.data.shapes import write_shape_masks
from mlcycle.reports.mask_box_errors import image_iou
from mlcycle.tasks.segmentation import dice_loss

CLASSES = ["background", "circle", "square", "triangle"]


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    return write_shape_masks(tmp_path_factory.mktemp("seg") / "shapes", count=24, size=32)


def test_masks_folder_parses(shapes):
    data = SegmentationData(source="masks", root=str(shapes), image_size=24, batch_size=4)
    assert data.class_names == CLASSES and data.num_classes == 4 and data.in_channels == 3
    assert len(data.index.samples) == 24 and not data.index.skipped
    counts = {s: len(p) for s, p in data.index.positions.items()}
    assert counts["val"] >= 1 and counts["test"] >= 1 and sum(counts.values()) == 24
    x, y, pos = next(iter(data.val_dataloader()))
    assert x.shape[1:] == (3, 24, 24) and x.dtype == torch.float32
    assert y.shape[1:] == (24, 24) and y.dtype == torch.long
    assert set(y.unique().tolist()) <= {0, 1, 2, 3}
    # The mask read back is the file's, resized nearest-neighbour (no blended class values).
    mask = np.asarray(Image.open(data.index.samples[int(pos[0])].mask))
    assert set(np.unique(mask)) >= set(y[0].unique().tolist())


def _palette_png(path: Path, mask: np.ndarray) -> None:
    img = Image.fromarray(mask.astype(np.uint8), mode="P")
    colours = np.zeros((256, 3), np.uint8)
    colours[1], colours[15], colours[255] = (128, 0, 0), (192, 128, 128), (224, 224, 192)
    img.putpalette(colours.flatten().tolist())
    img.save(path)


def write_voc(root: Path, n: int = 6, size: int = 20) -> Path:
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    names = [f"2007_{i:06d}" for i in range(n)]
    for i, name in enumerate(names):
        mask = np.zeros((size, size), np.uint8)
        mask[4:14, 4:14] = 15 if i % 2 else 1  # person or aeroplane
        mask[3, 3:15] = 255  # VOC's object border: ignored
        image = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        Image.fromarray(image).save(root / "JPEGImages" / f"{name}.jpg")
        _palette_png(root / "SegmentationClass" / f"{name}.png", mask)
    lists = root / "ImageSets" / "Segmentation"
    (lists / "train.txt").write_text("\n".join(names[:4]) + "\n")
    (lists / "val.txt").write_text("\n".join(names[4:]) + "\n")
    return root


def test_voc_layout_parses(tmp_path):
    root = write_voc(tmp_path / "VOC2012")
    # train.txt and val.txt give those splits; no test list, and test_fraction=0 draws none.
    data = SegmentationData(source="voc", root=str(root), image_size=20, test_fraction=0)
    assert data.num_classes == 21 and data.class_names[15] == "person"
    by_name = {
        s.image.stem: split for s, split in zip(data.index.samples, data.index.splits, strict=True)
    }
    assert [by_name[f"2007_{i:06d}"] for i in range(6)] == ["train"] * 4 + ["val"] * 2
    image, mask = data.raw_pair(1)
    assert image.shape == (20, 20, 3)
    # Palette indices, not colours; the border keeps 255.
    assert set(np.unique(mask)) == {0, 15, 255}
    assert (mask[3, 3:15] == 255).all()


def test_augmentation_moves_mask_with_image(tmp_path):
    """Image channel 0 encodes each pixel's class; after flips, rotations and shifts the mask
    must still read the same class at every pixel."""
    root = tmp_path / "aligned"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(1)
    for i in range(8):
        mask = np.zeros((24, 24), np.uint8)
        for _ in range(3):
            y, x = rng.integers(0, 18, size=2)
            mask[y : y + int(rng.integers(3, 7)), x : x + int(rng.integers(3, 9))] = rng.integers(
                1, 4
            )
        image = np.stack([mask * 60, rng.integers(0, 255, (24, 24)), np.full((24, 24), 9)], -1)
        Image.fromarray(image.astype(np.uint8)).save(root / "images" / f"{i}.png")
        Image.fromarray(mask).save(root / "masks" / f"{i}.png")
    transforms = [
        {"name": "HorizontalFlip", "p": 0.5},
        {"name": "RandomRotate90", "p": 1.0},
        {"name": "Affine", "translate_px": [-5, 5], "interpolation": 0, "p": 1.0},
    ]
    data = SegmentationData(
        source="masks",
        root=str(root),
        classes=CLASSES,
        image_size=24,
        mean=[0, 0, 0],
        std=[1 / 255] * 3,  # the tensor holds the raw 0..255 values
        train_transforms=transforms,
        val_fraction=0.25,
        test_fraction=0,
    )
    dataset = data.dataset("train", augment=True)
    moved = 0
    for i in range(len(dataset)):
        x, y, pos = dataset[i]
        raw_image, raw_mask = data.raw_pair(pos)
        assert torch.equal((x[0] / 60).round().long(), y)
        moved += int(not np.array_equal(y.numpy(), raw_mask))
    assert moved >= 1  # the transforms did move things


def write_bad_pairs(root: Path) -> Path:
    write_shape_masks(root, count=10, size=16)
    Image.fromarray(np.zeros((12, 16), np.uint8)).save(root / "masks" / "0001.png")
    beyond = np.zeros((16, 16), np.uint8)
    beyond[2, 2] = 7
    Image.fromarray(beyond).save(root / "masks" / "0002.png")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(root / "masks" / "0003.png")
    (root / "masks" / "0004.png").unlink()
    return root


def test_bad_masks_are_skipped_and_listed(tmp_path):
    root = write_bad_pairs(tmp_path / "bad")
    data = SegmentationData(source="masks", root=str(root), image_size=16, test_fraction=0)
    reasons = {Path(p).name: r for p, r in data.index.skipped}
    assert "is 16x12 (WxH) but its image is 16x16" in reasons["0001.png"]
    assert "class index 7, but there are 4 classes" in reasons["0002.png"]
    assert "mask is RGB" in reasons["0003.png"]
    assert "no mask named '0004'" in reasons["0004.png"]
    assert len(data.index.samples) == 6
    data.write_records(tmp_path)
    with (tmp_path / "skipped_files.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == 4


def test_no_usable_pair_or_no_classes_stops(tmp_path):
    root = tmp_path / "all_bad"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "images" / "a.png")
    Image.fromarray(np.full((8, 8), 9, np.uint8)).save(root / "masks" / "a.png")
    with pytest.raises(UserError, match="no usable image/mask pairs") as info:
        _ = SegmentationData(source="masks", root=str(root), classes=["bg", "fg"]).index
    assert "a.png" in str(info.value) and "class index 9" in str(info.value)
    with pytest.raises(UserError, match="data.classes is not set"):
        _ = SegmentationData(source="masks", root=str(root)).index


def test_image_iou_and_dice_loss():
    target = torch.tensor([[[0, 0], [1, 255]]])
    assert image_iou(target.clone(), target, 2).tolist() == [1.0]
    assert image_iou(torch.tensor([[[0, 0], [0, 1]]]), target, 2).tolist() == [pytest.approx(1 / 3)]
    logits = torch.nn.functional.one_hot(target.clamp(0, 1), 2).permute(0, 3, 1, 2).float() * 50
    assert float(dice_loss(logits, target, 255)) < 1e-3
    assert (
        float(dice_loss(-logits, target, 255)) > 0.7
    )  # all wrong (the +1 smoothing keeps it below 1)


def seg_args(root: Path, run_dir: Path, *extra: str) -> list[str]:
    return [
        "--config",
        "configs/segment_quickstart.yaml",
        "--data.source=masks",
        f"--data.root={root}",
        "--data.image_size=32",
        "--data.batch_size=8",
        "--model.arch_options={width: 8, depth: 2}",
        "--trainer.max_epochs=1",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--run_dir={run_dir}",
        *extra,
    ]


def test_segmentation_run_trains_and_evaluates(shapes, tmp_path, capsys):
    from mlcycle.commands.evaluate import main as evaluate
    from mlcycle.commands.train import main as train

    run = train(seg_args(shapes, tmp_path / "run", "--trainer.max_epochs=2"))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["monitor"] == "val/iou" and metrics["epochs"] == 2
    for key in ("val/iou", "val/acc", "val/dice", "val/loss", "train/loss", "val/iou/circle"):
        assert 0 <= metrics[key] <= 10, key
    info = json.loads((run / "data.json").read_text())
    assert info["class_names"] == CLASSES and info["ignore_index"] == 255 and len(info["mean"]) == 3
    assert (run / "splits.csv").read_text().startswith("path,mask,split")
    assert (run / "worst_iou.png").stat().st_size > 1000
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    assert "val/worst_iou" in events.Tags()["images"]
    assert {"val/iou", "val/iou/triangle", "curves/val_error"} <= set(events.Tags()["scalars"])

    result = evaluate(["--run", str(run), "--split", "val"])
    saved = json.loads((run / "eval_val.json").read_text())
    val = (run / "splits.csv").read_text().count(",val\n")
    assert saved["images"] == result["images"] == val
    assert saved["metrics"]["iou"] == pytest.approx(metrics["val/iou"], abs=1e-4)
    assert set(saved["per_class"]) == set(CLASSES)
    assert (run / "worst_iou_val.png").stat().st_size > 1000
    assert f"val: {val} images" in capsys.readouterr().out
