"""Sources, image modes, corrupt files, splits and the errors a user's data can cause."""

from __future__ import annotations

import csv
import hashlib
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import tree_digest, write_folder
from PIL import Image

from mlcycle.core.errors import UserError
from mlcycle.data import ImageClassificationData
from mlcycle.data.images import UnreadableImage, load_image
from mlcycle.data.splits import stratified_split


def data(**kwargs) -> ImageClassificationData:
    kwargs.setdefault("source", "folder")
    kwargs.setdefault("image_size", 16)
    kwargs.setdefault("batch_size", 4)
    return ImageClassificationData(**kwargs)


@pytest.mark.parametrize(
    ("mode", "channels"),
    [("L", 1), ("RGB", 3), ("RGBA", 3), ("P", 3), ("CMYK", 3), ("I;16", 1), ("1", 1), ("LA", 1)],
)
def test_every_mode_becomes_the_configured_channels(tmp_path, mode, channels):
    pixels = np.linspace(0, 255, 20 * 30).reshape(20, 30).astype(np.uint8)
    img = Image.fromarray(pixels, "L")
    if mode == "I;16":
        img = Image.fromarray(pixels.astype(np.uint16) * 257)
        assert img.mode == "I;16"
    else:
        img = img.convert(mode)
    path = tmp_path / ("x.tif" if mode in ("CMYK", "I;16") else "x.png")
    img.save(path)
    for want in (1, 3):
        arr = load_image(path, want)
        assert arr.shape == (20, 30, want) and arr.dtype == np.uint8
    if mode == "I;16":  # 16-bit is scaled to 8 bits, not clipped at 255
        gray = load_image(path, 1)[..., 0]
        assert gray[0, 0] == 0 and gray[-1, -1] == 255 and 100 < gray[10, 15] < 156


def test_mixed_modes_and_sizes_train_in_one_batch(tmp_path):
    root = write_folder(tmp_path / "imgs", per_class=6, classes=("a", "b"))
    Image.new("RGBA", (40, 25), (255, 0, 0, 128)).save(root / "a" / "rgba.png")
    Image.new("CMYK", (9, 13)).save(root / "b" / "cmyk.jpg")
    dm = data(root=str(root), channels=3, test_fraction=0)
    x, y, _ = next(iter(dm.train_dataloader()))
    assert x.shape[1:] == (3, 16, 16)
    assert dm.in_channels == 3 and dm.num_classes == 2


def test_channels_inferred_from_the_data(tmp_path):
    gray = write_folder(tmp_path / "gray", per_class=6, classes=("a", "b"))
    assert data(root=str(gray), test_fraction=0).in_channels == 1
    color = write_folder(tmp_path / "color", per_class=6, classes=("a", "b"), mode="RGB")
    assert data(root=str(color), test_fraction=0).in_channels == 3


def test_corrupt_files_are_skipped_listed_and_untouched(tmp_path):
    root = write_folder(tmp_path / "imgs", per_class=8, classes=("a", "b"))
    (root / "a" / "empty.png").write_bytes(b"")
    (root / "a" / "text.png").write_text("not an image")
    good = (root / "b" / "b_000.png").read_bytes()
    (root / "b" / "truncated.png").write_bytes(good[: len(good) // 2])
    before = tree_digest(root)
    dm = data(root=str(root))
    run = tmp_path / "run"
    run.mkdir()
    dm.write_records(run)
    with (run / "skipped_files.csv").open() as fh:
        skipped = {row["path"].rsplit("/", 1)[-1]: row["reason"] for row in csv.DictReader(fh)}
    assert set(skipped) == {"empty.png", "text.png", "truncated.png"}
    assert skipped["empty.png"] == "zero bytes"
    assert sum(dm.describe()["split_counts"].values()) == 16
    assert tree_digest(root) == before


def test_unreadable_image_says_why(tmp_path):
    path = tmp_path / "x.png"
    path.write_text("hello")
    with pytest.raises(UnreadableImage):
        load_image(path, 1)


def test_split_follows_contents_and_seed_and_keeps_every_class():
    hashes = [f"{c}{i}" for c in "abc" for i in range(200)]
    labels = [h[0] for h in hashes]
    first = stratified_split(hashes, labels, 0.2, 0.1, seed=1)
    assert first == stratified_split(hashes, labels, 0.2, 0.1, seed=1)
    assert first != stratified_split(hashes, labels, 0.2, 0.1, seed=2)
    counts = Counter(zip(labels, first, strict=True))
    for c in "abc":
        assert 8 <= counts[(c, "test")] <= 32 and 25 <= counts[(c, "val")] <= 55, counts


def test_adding_files_moves_no_existing_file():
    hashes = [f"h{i}" for i in range(300)]
    labels = ["a" if i % 2 else "b" for i in range(300)]
    before = stratified_split(hashes, labels, 0.15, 0.15, seed=7)
    after = stratified_split([*hashes, "new1", "new2"], [*labels, "a", "b"], 0.15, 0.15, seed=7)
    assert after[:300] == before


def test_identical_copies_share_a_split_and_tiny_classes_get_every_split():
    splits = stratified_split(["same", "same", "x", "y", "z"], list("aaaaa"), 0.15, 0.15, seed=0)
    assert splits[0] == splits[1], splits  # copies of one content share a split
    many = stratified_split(["d"] * 3 + [f"u{i}" for i in range(7)], list("a" * 10), 0.2, 0.2, 0)
    assert len(set(many[:3])) == 1 and set(many) == {"train", "val", "test"}, many
    assert set(stratified_split(["p", "q", "r"], list("bbb"), 0.15, 0.15, seed=0)) == {
        "train",
        "val",
        "test",
    }


def test_manifest_records_every_file_with_its_hash(tmp_path):
    root = write_folder(tmp_path / "imgs", per_class=6, classes=("a", "b"))
    dm = data(root=str(root), test_fraction=0)
    run = tmp_path / "run"
    run.mkdir()
    dm.write_records(run)
    with (run / "data_manifest.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 12 and set(rows[0]) == {
        "path",
        "sha256",
        "bytes",
        "label",
        "split",
        "source",
    }
    first = Path(rows[0]["path"])
    assert rows[0]["sha256"] == hashlib.sha256(first.read_bytes()).hexdigest()
    assert int(rows[0]["bytes"]) == first.stat().st_size
    # The fingerprint follows the contents, not where the folder lives.
    moved = tmp_path / "moved"
    shutil.copytree(root, moved)
    assert data(root=str(moved), test_fraction=0).fingerprint == dm.fingerprint
    (moved / "a" / "a_000.png").write_bytes((moved / "b" / "b_000.png").read_bytes())
    assert data(root=str(moved), test_fraction=0).fingerprint != dm.fingerprint


def test_quarantined_files_are_left_out(tmp_path):
    root = write_folder(tmp_path / "imgs", per_class=6, classes=("a", "b"))
    quarantine = tmp_path / "quarantine.csv"
    quarantine.write_text(f"path,reason\n{root / 'a' / 'a_000.png'},duplicate\n")
    dm = data(root=str(root), test_fraction=0, quarantine=str(quarantine))
    assert len(dm.index.samples) == 11
    assert all(s.path.name != "a_000.png" for s in dm.index.samples)


def test_user_train_val_test_folders_are_respected(tmp_path):
    for split, n in (("train", 6), ("val", 3), ("test", 2)):
        write_folder(tmp_path / "imgs" / split, per_class=n, classes=("a", "b"))
    dm = data(root=str(tmp_path / "imgs"))
    assert dm.describe()["split_counts"] == {"train": 12, "val": 6, "test": 4}
    assert all("/val/" in str(dm.index.samples[p].path) for p in dm.index.positions["val"])


def test_csv_manifest_relative_paths(tmp_path):
    root = write_folder(tmp_path / "imgs", per_class=6, classes=("a", "b"))
    manifest = tmp_path / "labels.csv"
    rows = [f"imgs/{p.parent.name}/{p.name},{p.parent.name}" for p in sorted(root.rglob("*.png"))]
    manifest.write_text("path,label\n" + "\n".join(rows) + "\n")
    dm = data(source="csv", manifest=str(manifest), test_fraction=0)
    assert dm.class_names == ["a", "b"] and len(dm.index.samples) == 12


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda t: {"root": str(t / "nope")}, "does not exist"),
        (lambda t: {"root": str((t / "empty").mkdir() or t / "empty")}, "no images found"),
        (
            lambda t: {"root": str(write_folder(t / "one", per_class=6, classes=("only",)))},
            "only class 'only'",
        ),
        (
            lambda t: {"root": str(write_folder(t / "few", per_class=2, classes=("a", "b")))},
            "class 'a' has 2",
        ),
        (lambda t: {"source": "csv", "manifest": str(t / "none.csv")}, "does not exist"),
        (
            lambda t: {"source": "csv", "manifest": _csv(t, "path,name\nx.png,a\n")},
            "no 'label' column",
        ),
        (
            lambda t: {"source": "csv", "manifest": _csv(t, "path,label\n../x.png,a\n")},
            "path leaves the data root",
        ),
        (lambda t: {"source": "sqlite"}, "unknown data.source 'sqlite'"),
        (
            lambda t: {"root": str(t), "train_transforms": [{"name": "Afine"}]},
            "did you mean 'Affine'",
        ),
        (
            lambda t: {"root": str(t), "train_transforms": [{"name": "Affine", "rotat": 3}]},
            "did you mean 'rotate'",
        ),
    ],
)
def test_data_errors_name_the_problem(tmp_path, make, message):
    with pytest.raises(UserError, match=message):
        _ = data(**make(tmp_path)).num_classes


def _csv(tmp_path, text: str) -> str:
    path = tmp_path / "m.csv"
    path.write_text(text)
    return str(path)


def test_augmentation_only_on_train(tmp_path):
    root = write_folder(tmp_path / "imgs", per_class=6, classes=("a", "b"))
    dm = data(root=str(root), test_fraction=0, train_transforms=[{"name": "InvertImg", "p": 1.0}])
    train, val = dm.dataset("train", augment=True), dm.dataset("train", augment=False)
    assert not np.allclose(train[0][0].numpy(), val[0][0].numpy())
    assert dm.val_dataloader().dataset.pipeline.transforms[0].__class__.__name__ == "Normalize"


def test_digits_are_written_once_as_png(tmp_path):
    dm = data(source="digits", root=str(tmp_path / "digits"))
    assert dm.num_classes == 10 and len(dm.index.samples) == 1797
    first = tree_digest(tmp_path / "digits")
    assert data(source="digits", root=str(tmp_path / "digits")).num_classes == 10
    assert tree_digest(tmp_path / "digits") == first
