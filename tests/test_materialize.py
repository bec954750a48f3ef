"""materialize_data.py: copies by class with a manifest; --strip-exif cleans copies, never originals."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import tree_digest, write_folder
from PIL import Image, PngImagePlugin
from quality_helpers import jpeg_with_gps, texture

from mlcycle.commands.materialize_data import main
from mlcycle.data import ImageClassificationData
from mlcycle.quality.exif import GPS_IFD, strip_metadata


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    root = write_folder(tmp_path / "photos", per_class=5, classes=("cat", "dog"), mode="RGB")
    jpeg_with_gps(root / "cat" / "holiday.jpg")
    return root


def run(root: Path, out: Path, *extra: str) -> dict:
    args = ["--config", "configs/image_folder.yaml", f"--data.root={root}", "--out", str(out)]
    return main([*args, "--data.test_fraction=0.2", *extra])


def test_strip_exif_removes_gps_from_the_copy_only(photos, tmp_path):
    before = tree_digest(photos)
    record = run(photos, tmp_path / "clean", "--strip-exif")
    assert tree_digest(photos) == before
    original = Image.open(photos / "cat" / "holiday.jpg")
    assert original.getexif().get_ifd(GPS_IFD)  # the original still has its GPS position
    copy = Image.open(tmp_path / "clean" / "cat" / "holiday.jpg")
    assert dict(copy.getexif()) == {}
    raw = (tmp_path / "clean" / "cat" / "holiday.jpg").read_bytes()
    assert b"SecretCam" not in raw and b"Exif" not in raw
    assert np.array_equal(np.asarray(original), np.asarray(copy))  # same pixels, no re-encoding
    assert record["files"] == 11 and record["files_with_metadata_removed"] == 1


def test_manifest_keeps_labels_splits_and_origin(photos, tmp_path):
    run(photos, tmp_path / "copy")
    with (tmp_path / "copy" / "manifest.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 11 and {r["label"] for r in rows} == {"cat", "dog"}
    for row in rows:
        copied = tmp_path / "copy" / row["path"]
        assert copied.parent.name == row["label"]
        assert copied.read_bytes() == (photos / row["source_path"]).read_bytes()  # no --strip-exif
        assert row["sha256"] == row["source_sha256"]
    original = ImageClassificationData(source="folder", root=str(photos), test_fraction=0.2)
    copied = ImageClassificationData(source="csv", manifest=str(tmp_path / "copy" / "manifest.csv"))

    def splits(dm: ImageClassificationData) -> dict[str, str]:
        return {s.path.name: sp for s, sp in zip(dm.index.samples, dm.index.splits, strict=True)}

    assert splits(copied) == splits(original)
    record = json.loads((tmp_path / "copy" / "materialize.json").read_text())
    assert record["source_fingerprint"] == original.fingerprint and not record["strip_exif"]


def test_png_text_and_exif_chunks_are_dropped_and_orientation_kept():
    img = Image.fromarray(texture(1)[:, :20])
    exif = Image.Exif()
    exif[0x0112] = 6
    exif.get_ifd(GPS_IFD)[1] = "N"
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Jane Doe")
    buf = io.BytesIO()
    img.save(buf, "PNG", exif=exif, pnginfo=info)
    clean = strip_metadata(buf.getvalue())
    assert b"Jane" not in clean
    copy = Image.open(io.BytesIO(clean))
    assert dict(copy.getexif()) == {0x0112: 6}  # still shown upright, like the original


@pytest.mark.parametrize("where", ["inside", "not_empty"])
def test_refuses_an_unsafe_out_folder(photos, tmp_path, capsys, where):
    out = photos / "cat" / "copies" if where == "inside" else tmp_path / "busy"
    if where == "not_empty":
        out.mkdir()
        (out / "keep.txt").write_text("mine")
    before = tree_digest(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        run(photos, out)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("error: --out")
    assert tree_digest(tmp_path) == before
