"""validate_data.py, eda.py and materialize_data.py on segmentation and detection data: the
quick-start configs as they are, on tiny generated shapes with planted faults."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import tree_digest
from PIL import Image

from mlcycle.commands.eda import main as eda
from mlcycle.commands.materialize_data import main as materialize
from mlcycle.commands.validate_data import main as validate

SEG = "configs/segment_quickstart.yaml"
DET = "configs/detect_quickstart.yaml"


def args(config: str, root: Path, *extra: str) -> list[str]:
    """The quick-start config on generated shapes read as a masks folder or a COCO file."""
    if config == SEG:
        source = ["--data.source=masks"]
    else:
        source = ["--data.source=coco", f"--data.annotations={root / 'annotations.json'}"]
    return ["--config", config, f"--data.root={root}", *source, *extra]


@pytest.fixture(scope="module")
def seg_root(tmp_path_factory) -> Path:
    from mlcycle.data.shapes import write_shape_masks

    root = write_shape_masks(tmp_path_factory.mktemp("seg") / "shapes", count=40, size=32, seed=3)
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(root / "masks" / "0005.png")  # empty
    shutil.copyfile(root / "images" / "0001.png", root / "images" / "copy.png")  # duplicate
    shutil.copyfile(root / "masks" / "0001.png", root / "masks" / "copy.png")
    (root / "images" / "broken.png").write_text("not an image")
    shutil.copyfile(root / "masks" / "0002.png", root / "masks" / "broken.png")
    return root


@pytest.fixture(scope="module")
def det_root(tmp_path_factory) -> Path:
    from mlcycle.data.shapes import write_shape_boxes

    root = write_shape_boxes(tmp_path_factory.mktemp("det") / "shapes", count=40, size=32, seed=3)
    coco = json.loads((root / "annotations.json").read_text())
    boxed = sorted({a["image_id"] for a in coco["annotations"]})
    first, second, third = boxed[:3]
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] != first]  # no boxes
    extra = {"iscrowd": 0, "area": 10, "category_id": 1}
    coco["annotations"] += [
        {"id": 9001, "image_id": second, "bbox": [24, 4, 12, 6], **extra},  # past the right edge
        {"id": 9002, "image_id": third, "bbox": [1, 14, 30, 1], **extra},  # a thin sliver
    ]
    (root / "annotations.json").write_text(json.dumps(coco))
    return root


def test_segmentation_validate_finds_image_and_mask_faults(seg_root, tmp_path, capsys):
    before = tree_digest(seg_root)
    report = validate(args(SEG, seg_root, "--out", str(tmp_path / "r"), "--min-per-class=2"))
    assert tree_digest(seg_root) == before
    assert report["task"] == "segmentation"
    found = report["findings"]
    assert {Path(e["mask"]).name for e in found["empty_masks"]} == {"0005.png"}
    dup = {Path(f["path"]).name for g in found["exact_duplicates"] for f in g["files"]}
    assert dup == {"0001.png", "copy.png"}
    assert [Path(e["path"]).name for e in found["unreadable"]] == ["broken.png"]
    assert any(Path(e["path"]).name == "broken.png" for e in found["skipped"])
    summary = report["annotations"]
    assert summary["empty_masks"] == 1 and 0 < summary["coverage"]["median"] < 1
    assert set(summary["class_pixel_share"]) == {"background", "circle", "square", "triangle"}
    assert (tmp_path / "r" / "annotations.csv").read_text().count(
        "\n"
    ) == 42  # 41 pairs and a header
    out = capsys.readouterr().out
    assert out.startswith("layout:") and "empty_masks" in out and "no data.quarantine" in out


def test_detection_validate_finds_box_faults(det_root, tmp_path):
    report = validate(args(DET, det_root, "--out", str(tmp_path / "r")))
    found = report["findings"]
    assert report["task"] == "detection" and report["class_count_unit"] == "objects"
    assert found["images_without_boxes"]
    assert [e["box"] for e in found["boxes_outside"]] == [[24.0, 4.0, 36.0, 10.0]]
    slivers = {(e["measure"], tuple(e["box"])) for e in found["box_outliers"]}
    assert ("aspect", (1.0, 14.0, 31.0, 15.0)) in slivers
    assert report["annotations"]["objects"] == sum(report["class_counts"].values())


@pytest.mark.parametrize("config", [SEG, DET])
def test_eda_shows_masks_and_boxes_without_the_test_split(config, seg_root, det_root, tmp_path):
    root = seg_root if config == SEG else det_root
    out = eda(args(config, root, "--out", str(tmp_path / "eda"), "--no-notebook"))
    page = (out / "index.html").read_text()
    for name in ("class_share", "per_image", "annotated_samples"):
        assert f'<img alt="{name}"' in page
    assert ('<img alt="box_shapes"' in page) == (config == DET)
    assert "/test/" not in page and "The test split was not read" in page
    record = json.loads((out / "eda.json").read_text())
    assert record["task"] == ("segmentation" if config == SEG else "detection")
    assert record["test_files_not_read"] > 0 and "test" in record["counts"]
    assert not re.search(r"(src|href)=\"(?!data:)", page)


def test_materialize_refuses_dense_data_in_one_line(seg_root, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        materialize(args(SEG, seg_root, "--out", str(tmp_path / "copy")))
    assert exit_info.value.code == 2 and not (tmp_path / "copy").exists()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "classification data only" in err


def test_unknown_key_of_a_dense_module_names_the_closest(seg_root, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        validate(args(SEG, seg_root, "--data.ignore_indx=0", "--out", str(tmp_path / "r")))
    assert exit_info.value.code == 2
    assert "did you mean 'data.ignore_index'" in capsys.readouterr().err
