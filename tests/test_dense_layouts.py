"""Split layouts of segmentation and detection data: split folders, VOC lists, YOLO data.yaml,
COCO instances_<split>.json; links inside the root; paths leaving it; strict; class coverage."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mlcycle.core.errors import UserError
from mlcycle.data.detection import DetectionData
from mlcycle.data.segmentation import SegmentationData

SEG_CLASSES = ["background", "cat", "dog"]
DET_CLASSES = ["cat", "dog"]
_seed = iter(range(10**6))


def png(path: Path) -> Path:
    """A 16x16 RGB PNG with content of its own (a new seed each call)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(next(_seed))
    Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(path, format="PNG")
    return path


def mask(path: Path, classes: tuple[int, ...] = (1,)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    values = np.zeros((16, 16), np.uint8)
    for k, c in enumerate(classes):
        values[k * 4 : k * 4 + 4, 2:10] = c
    Image.fromarray(values).save(path)
    return path


def seg_pairs(images: Path, masks: Path, count: int, prefix: str, classes=(1, 2)) -> list[Path]:
    return [
        (png(images / f"{prefix}{i}.png"), mask(masks / f"{prefix}{i}.png", classes))[0]
        for i in range(count)
    ]


def yolo_pair(images: Path, name: str, cls: int = 0, labels: Path | None = None) -> Path:
    image = png(images / f"{name}.png")
    labels = labels or Path(str(images).replace("images", "labels"))
    labels.mkdir(parents=True, exist_ok=True)
    (labels / f"{name}.txt").write_text(f"{cls} 0.5 0.5 0.5 0.5\n")
    return image


def coco_file(path: Path, names: list[str], categories=DET_CLASSES, ids_from: int = 1) -> None:
    images, annotations = [], []
    for k, name in enumerate(names):
        images.append({"id": ids_from + k, "file_name": name, "width": 16, "height": 16})
        annotations.append(
            {
                "id": ids_from + k,
                "image_id": ids_from + k,
                "category_id": 1 + k % len(categories),
                "bbox": [2, 2, 8, 8],
            }
        )
    cats = [{"id": i + 1, "name": n} for i, n in enumerate(categories)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": cats}))


def by_split(data) -> dict[str, set[str]]:
    paths = getattr(data.index.samples[0], "image", None) is not None
    out: dict[str, set[str]] = {"train": set(), "val": set(), "test": set()}
    for sample, split in zip(data.index.samples, data.index.splits, strict=True):
        out[split].add(str(sample.image if paths else sample.path))
    return out


def layout_line(capsys) -> str:
    out = capsys.readouterr().out
    assert out.startswith("layout: "), out
    return out.splitlines()[0]


# --- segmentation ----------------------------------------------------------------------------


def test_masks_split_folders_give_the_splits(tmp_path, capsys):
    root = tmp_path / "seg"
    train = seg_pairs(root / "images" / "Train", root / "masks" / "Train", 6, "a")
    val = seg_pairs(root / "images" / "valid", root / "masks" / "valid", 2, "b")
    test = seg_pairs(root / "images" / "TEST", root / "masks" / "TEST", 2, "c")
    (root / "classes.txt").write_text("\n".join(SEG_CLASSES))
    data = SegmentationData(source="masks", root=str(root), image_size=16)
    assert data.class_names == SEG_CLASSES and not data.index.skipped
    splits = by_split(data)
    assert splits == {
        "train": set(map(str, train)),
        "val": set(map(str, val)),
        "test": set(map(str, test)),
    }
    line = layout_line(capsys)
    assert (
        line
        == "layout: masks folders images/<split>/ masks/<split>/, split folders Train/ valid/ TEST/"
    )
    assert data.describe()["layout"] in line


def test_split_first_folders_draw_a_missing_val_from_train(tmp_path, capsys):
    root = tmp_path / "seg"
    train = seg_pairs(root / "train" / "images", root / "train" / "masks", 12, "a")
    test = seg_pairs(root / "test" / "images", root / "test" / "masks", 3, "c")
    data = SegmentationData(
        source="masks", root=str(root), classes=SEG_CLASSES, image_size=16, val_fraction=0.25
    )
    splits = by_split(data)
    assert splits["test"] == set(map(str, test))  # the given test files, exactly
    assert splits["val"] and splits["val"] | splits["train"] == set(map(str, train))
    assert layout_line(capsys) == (
        "layout: masks folders <split>/images/ <split>/masks/, split folders train/ test/; "
        "val drawn from train (25%)"
    )
    again = SegmentationData(
        source="masks", root=str(root), classes=SEG_CLASSES, image_size=16, val_fraction=0.25
    )
    assert by_split(again) == splits  # content-stable


def test_mixed_layouts_stop_and_classes_reads_them_all(tmp_path, capsys):
    root = tmp_path / "seg"
    seg_pairs(root / "images" / "train", root / "masks" / "train", 6, "a")
    seg_pairs(root / "images" / "extra", root / "masks" / "extra", 6, "b")
    with pytest.raises(UserError) as info:
        _ = SegmentationData(source="masks", root=str(root), classes=SEG_CLASSES).index
    message = str(info.value)
    assert "train/" in message and "extra/" in message and "--data.layout=splits" in message
    data = SegmentationData(
        source="masks", root=str(root), classes=SEG_CLASSES, layout="classes", image_size=16
    )
    assert len(data.index.samples) == 12 and all(s.split is None for s in data.index.samples)
    assert "splits drawn (val 15%, test 15%)" in capsys.readouterr().out


def test_pixel_class_coverage(tmp_path, capsys):
    root = tmp_path / "seg"
    seg_pairs(root / "images" / "train", root / "masks" / "train", 4, "a", classes=(1, 2))
    seg_pairs(root / "images" / "val", root / "masks" / "val", 2, "b", classes=(1,))
    data = SegmentationData(
        source="masks", root=str(root), classes=SEG_CLASSES, image_size=16, test_fraction=0
    )
    _ = data.index
    assert (
        capsys.readouterr().err.count("warning: class 'dog' has no pixel in the given val split")
        == 1
    )
    seg_pairs(root / "images" / "val", root / "masks" / "val", 1, "z", classes=(3,))
    with pytest.raises(
        UserError, match=r"'bird' \(val\) have pixels in val or test but none in train"
    ):
        _ = SegmentationData(
            source="masks", root=str(root), classes=[*SEG_CLASSES, "bird"], test_fraction=0
        ).index


def write_voc(root: Path, names: list[str]) -> None:
    for name in names:
        png(root / "JPEGImages" / f"{name}.png")
        mask(root / "SegmentationClass" / f"{name}.png", (1, 15))
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)


def test_voc_lists_any_combination_with_train(tmp_path, capsys):
    names = [f"2007_{i:06d}" for i in range(10)]
    root = tmp_path / "VOC"
    write_voc(root, names)
    lists = root / "ImageSets" / "Segmentation"
    (lists / "train.txt").write_text("\n".join(names[:8]))
    (lists / "test.txt").write_text("\n".join(names[8:]))
    data = SegmentationData(source="voc", root=str(root), image_size=16, val_fraction=0.3)
    stems = {s: {Path(p).stem for p in paths} for s, paths in by_split(data).items()}
    assert stems["test"] == set(names[8:]) and stems["val"] and stems["val"] <= set(names[:8])
    assert layout_line(capsys) == (
        "layout: VOC ImageSets/Segmentation train.txt test.txt; val drawn from train (30%)"
    )
    # trainval (VOC's train + val) with train: val is the rest of trainval.
    (lists / "test.txt").unlink()
    (lists / "trainval.txt").write_text("\n".join(names))
    data = SegmentationData(source="voc", root=str(root), image_size=16, test_fraction=0)
    stems = {s: {Path(p).stem for p in paths} for s, paths in by_split(data).items()}
    assert stems == {"train": set(names[:8]), "val": set(names[8:]), "test": set()}
    assert "train.txt trainval.txt less train.txt as val" in capsys.readouterr().out
    # trainval alone: train, with val drawn from it.
    (lists / "train.txt").unlink()
    data = SegmentationData(source="voc", root=str(root), image_size=16, test_fraction=0)
    assert data.index.splits.count("val") >= 1 and len(data.index.splits) == 10
    assert "trainval.txt as train; val drawn from train (15%)" in capsys.readouterr().out


def test_link_inside_root_is_followed_and_recorded_as_the_link(tmp_path):
    root = tmp_path / "seg"
    seg_pairs(root / "images", root / "masks", 8, "a")
    outside = png(tmp_path / "cache" / "blob")  # DVC-style cache file, no extension
    (root / "images" / "linked.png").symlink_to(outside)
    mask(root / "masks" / "linked.png")
    data = SegmentationData(source="masks", root=str(root), classes=SEG_CLASSES, image_size=16)
    assert not data.index.skipped and len(data.index.samples) == 9
    data.write_records(tmp_path)
    with (tmp_path / "data_manifest.csv").open() as fh:
        rows = {r["path"]: r for r in csv.DictReader(fh)}
    link = str(root / "images" / "linked.png")
    assert link in rows and str(outside) not in rows
    assert rows[link]["sha256"] == hashlib.sha256(outside.read_bytes()).hexdigest()
    assert Path(os.path.commonpath(list(rows))) == root


def test_strict_stops_on_a_skipped_segmentation_file(tmp_path):
    root = tmp_path / "seg"
    seg_pairs(root / "images", root / "masks", 6, "a")
    png(root / "images" / "lonely.png")
    data = SegmentationData(source="masks", root=str(root), classes=SEG_CLASSES, image_size=16)
    assert [Path(p).name for p, _ in data.index.skipped] == ["lonely.png"]
    with pytest.raises(UserError, match="data.strict=true and 1 file"):
        _ = SegmentationData(source="masks", root=str(root), classes=SEG_CLASSES, strict=True).index


# --- detection: YOLO ---------------------------------------------------------------------------


def test_yolo_data_yaml_gives_splits_names_and_labels(tmp_path, capsys):
    root = tmp_path / "yolo"
    train = [yolo_pair(root / "images" / "train", f"a{i}", i % 2) for i in range(8)]
    val = [yolo_pair(root / "images" / "val", f"b{i}", i % 2) for i in range(2)]
    test = [yolo_pair(root / "images" / "test", f"c{i}", i % 2) for i in range(2)]
    png(tmp_path / "outside.png")
    (root / "test.txt").write_text("./images/test/c0.png\nimages/test/c1.png\n../outside.png\n")
    (root / "data.yaml").write_text(
        "path: .\ntrain: images/train\nval: [images/val]\ntest: test.txt\n"
        "nc: 2\nnames: {0: cat, 1: dog}\n"
    )
    data = DetectionData(source="yolo", root=str(root), image_size=16)
    assert data.class_names == DET_CLASSES
    splits = by_split(data)
    assert splits == {
        "train": set(map(str, train)),
        "val": set(map(str, val)),
        "test": set(map(str, test)),
    }
    assert data.index.skipped == [
        (
            str(tmp_path / "outside.png"),
            "path leaves the data root (line 3 of test.txt: '../outside.png')",
        )
    ]
    assert all(len(s.labels) == 1 for s in data.index.samples)
    assert layout_line(capsys) == "layout: YOLO data.yaml train/ val/ test/"
    what = {row[3] for row in data.manifest_rows()}
    assert {"data.yaml", "image list"} <= what
    # data.root may name the yaml file itself; its folder is the root.
    again = DetectionData(source="yolo", root=str(root / "data.yaml"), image_size=16)
    assert by_split(again) == splits


def test_yolo_roboflow_export_and_drawn_test(tmp_path, capsys):
    """Roboflow writes '../train/images' beside a data.yaml in the root; Ultralytics reads
    'train/images' in the root then, and so does mlcycle."""
    root = tmp_path / "rf"
    train = [yolo_pair(root / "train" / "images", f"a{i}", i % 2) for i in range(10)]
    val = [yolo_pair(root / "valid" / "images", f"b{i}", i % 2) for i in range(2)]
    (root / "data.yaml").write_text(
        "train: ../train/images\nval: ../valid/images\ntest:\nnc: 2\nnames: [cat, dog]\n"
    )
    data = DetectionData(source="yolo", root=str(root), image_size=16, test_fraction=0.2)
    splits = by_split(data)
    assert splits["val"] == set(map(str, val)) and splits["test"]
    assert splits["test"] | splits["train"] == set(map(str, train))
    assert layout_line(capsys) == "layout: YOLO data.yaml train/ val/; test drawn from train (20%)"
    # Without the yaml, the split folders say the same (classes from classes.txt).
    (root / "data.yaml").unlink()
    (root / "classes.txt").write_text("cat\ndog\n")
    data = DetectionData(source="yolo", root=str(root), image_size=16, test_fraction=0.2)
    assert by_split(data) == splits


def test_yolo_split_folders_train_and_test_only(tmp_path, capsys):
    root = tmp_path / "yolo"
    train = [yolo_pair(root / "images" / "train", f"a{i}", i % 2) for i in range(10)]
    test = [yolo_pair(root / "images" / "testing", f"c{i}", i % 2) for i in range(2)]
    (root / "classes.txt").write_text("cat\ndog\n")
    data = DetectionData(source="yolo", root=str(root), image_size=16)
    splits = by_split(data)
    assert splits["test"] == set(map(str, test)) and splits["val"] <= set(map(str, train))
    assert splits["val"]
    assert layout_line(capsys).endswith("split folders train/ testing/; val drawn from train (15%)")
    yolo_pair(root / "images" / "misc", "m0")
    with pytest.raises(UserError) as info:
        _ = DetectionData(source="yolo", root=str(root)).index
    assert "train/" in str(info.value) and "misc/" in str(info.value)


def test_object_class_coverage(tmp_path, capsys):
    root = tmp_path / "yolo"
    for i in range(6):
        yolo_pair(root / "images" / "train", f"a{i}", i % 2)
    yolo_pair(root / "images" / "val", "b0", 0)
    (root / "classes.txt").write_text("cat\ndog\nbird\n")
    data = DetectionData(source="yolo", root=str(root), image_size=16, test_fraction=0)
    _ = data.index
    assert (
        capsys.readouterr().err.count("warning: class 'dog' has no object in the given val split")
        == 1
    )
    yolo_pair(root / "images" / "val", "b1", 2)
    with pytest.raises(UserError, match=r"'bird' \(val\) have objects in val or test but none"):
        _ = DetectionData(source="yolo", root=str(root), test_fraction=0).index


# --- detection: COCO ---------------------------------------------------------------------------


def coco_2017(root: Path, train: int = 10, val: int = 3) -> dict[str, list[Path]]:
    made = {
        "train": [png(root / "train2017" / f"{i:04d}.png") for i in range(train)],
        "val": [png(root / "images" / "val2017" / f"{i:04d}.png") for i in range(val)],
    }
    coco_file(root / "annotations" / "instances_train2017.json", [p.name for p in made["train"]])
    coco_file(
        root / "annotations" / "instances_val2017.json", [p.name for p in made["val"]], ids_from=100
    )
    return made


def test_coco_instances_files_give_the_splits(tmp_path, capsys):
    root = tmp_path / "coco"
    made = coco_2017(root)
    data = DetectionData(source="coco", root=str(root), image_size=16)
    assert data.class_names == DET_CLASSES and data.category_ids == [1, 2]
    splits = by_split(data)
    assert splits["val"] == set(map(str, made["val"])) and splits["test"]
    assert splits["test"] | splits["train"] == set(map(str, made["train"]))
    assert layout_line(capsys) == (
        "layout: COCO instances_train2017.json instances_val2017.json; test drawn from train (15%)"
    )
    what = [row[0] for row in data.manifest_rows() if row[3] == "annotations"]
    assert [Path(p).name for p in what] == ["instances_train2017.json", "instances_val2017.json"]


def test_coco_file_name_leaving_the_root_is_skipped_and_links_are_followed(tmp_path):
    root = tmp_path / "coco"
    made = coco_2017(root)
    outside = png(tmp_path / "elsewhere" / "secret.png")
    link = root / "train2017" / "linked.png"
    link.symlink_to(outside)
    spec = root / "annotations" / "instances_train2017.json"
    names = [p.name for p in made["train"]] + ["linked.png", "../elsewhere/secret.png"]
    coco_file(spec, names)
    data = DetectionData(source="coco", root=str(root), image_size=16, test_fraction=0)
    [(path, reason)] = data.index.skipped
    assert reason.startswith("path leaves the data root ('../elsewhere/secret.png'")
    assert path == str(root / "../elsewhere/secret.png")
    assert str(outside) not in {str(s.path) for s in data.index.samples}
    rows = {r[0]: r for r in data.manifest_rows()}
    assert rows[str(link)][1] == hashlib.sha256(outside.read_bytes()).hexdigest()
    assert data.index.root == root  # relative manifest names stay below the root, link included
    with pytest.raises(UserError, match="data.strict=true and 1 file"):
        _ = DetectionData(source="coco", root=str(root), strict=True).index


def test_paths_leaving_a_relative_root_are_caught(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    coco_2017(Path("coco"))
    png(Path("elsewhere.png"))
    coco_file(Path("coco/annotations/instances_val2017.json"), ["../elsewhere.png"], ids_from=100)
    for i in range(2):
        yolo_pair(Path("yolo/images/train"), f"a{i}")
    Path("yolo/val.txt").write_text("../elsewhere.png\n")
    Path("yolo/data.yaml").write_text("train: images/train\nval: val.txt\nnames: [cat, dog]\n")
    coco = DetectionData(source="coco", root="coco", image_size=16, test_fraction=0)
    with pytest.raises(UserError, match="gives a val split, but none of its files is usable"):
        _ = coco.index
    with pytest.raises(UserError, match="gives a val split, but none of its files is usable"):
        _ = DetectionData(source="yolo", root="yolo", image_size=16, test_fraction=0).index
    yolo_pair(Path("yolo/images/val"), "b0")
    Path("yolo/val.txt").write_text("../elsewhere.png\nimages/train/a1.png\nimages/val/b0.png\n")
    yolo = DetectionData(source="yolo", root="yolo", image_size=16, test_fraction=0)
    assert [r for _, r in yolo.index.skipped] == [
        "path leaves the data root (line 1 of val.txt: '../elsewhere.png')",
        "also listed in the train split; kept there",
    ]
    assert yolo.index.splits == ["train", "train", "val"]


def test_coco_files_must_agree_on_categories(tmp_path):
    root = tmp_path / "coco"
    made = coco_2017(root)
    coco_file(
        root / "annotations" / "instances_val2017.json",
        [p.name for p in made["val"]],
        categories=["cat", "bird"],
        ids_from=100,
    )
    with pytest.raises(UserError) as info:
        _ = DetectionData(source="coco", root=str(root)).index
    assert "instances_val2017.json" in str(info.value)
    assert "instances_train2017.json" in str(info.value)


def test_a_registered_source_is_read_with_no_other_edit(tmp_path):
    from mlcycle.data.index import Listing
    from mlcycle.data.segmentation import SEGMENTATION_SOURCES, MaskSample

    root = tmp_path / "pairs"
    seg_pairs(root / "images", root / "masks", 6, "p", classes=(1,))

    def listed(root: str | None = None, **_) -> Listing:
        base = Path(root)
        pairs = [
            MaskSample(p, base / "masks" / p.name) for p in sorted((base / "images").iterdir())
        ]
        return Listing(pairs, str(base), text="test pairs", class_names=["background", "thing"])

    SEGMENTATION_SOURCES.add("test_pairs", listed)  # what a plugin's entry point does
    data = SegmentationData(source="test_pairs", root=str(root), image_size=16, test_fraction=0)
    assert len(data.index.samples) == 6 and data.num_classes == 2
    with pytest.raises(UserError, match="unknown data.source 'mask'.*did you mean 'masks'"):
        _ = SegmentationData(source="mask", root=str(root)).index


@pytest.mark.parametrize("cls", [SegmentationData, DetectionData])
def test_shared_arguments_are_documented_once_for_every_data_module(cls):
    from jsonargparse import ArgumentParser

    from mlcycle.data import ImageClassificationData

    for module in (cls, ImageClassificationData):
        parser = ArgumentParser()
        parser.add_class_arguments(module, "data")
        text = " ".join(parser.format_help().split())
        assert "--data.val_fraction" in text and "share of the images held for validation" in text
        assert "--data.strict" in text and "--data.image_size" in text
