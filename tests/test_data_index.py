"""The persistent data index: facts of unchanged files come from the index cache, changed files
are read again, the record (manifest, splits, fingerprint, skipped files) is the same with and
without the cache, and the cache never writes into the data."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import tree_digest, write_folder
from PIL import Image

from mlcycle.core.device import available_cores
from mlcycle.core.errors import UserError
from mlcycle.data.classification import ImageClassificationData
from mlcycle.data.detection import DetectionData
from mlcycle.data.index import gather_facts
from mlcycle.data.index_cache import CACHE_FILE, IndexCache, file_stat
from mlcycle.data.segmentation import SegmentationData
from mlcycle.data.shapes import write_shape_boxes, write_shape_masks
from mlcycle.quality.config import build_data


def age(root: Path, seconds: float = 3600) -> Path:
    """Date every file back, as on a data set at rest: files modified in the last two seconds
    are never cached (their time may not show a second write)."""
    then = time.time() - seconds
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, (then, then))
    return root


def record(data) -> tuple:
    """What a run records of its data."""
    index = data.index
    return data.manifest_rows(), index.splits, data.fingerprint, index.skipped


def classification(root: Path, cache: Path | bool, **kwargs) -> ImageClassificationData:
    cache_arg = cache if cache is False else str(cache)
    return ImageClassificationData(
        source="folder", root=str(root), image_size=8, index_cache=cache_arg, **kwargs
    )


def stored(cache: Path) -> dict[str, str]:
    """``{path: facts JSON}`` of the cache's rows."""
    with sqlite3.connect(cache / CACHE_FILE) as db:
        return dict(db.execute("SELECT path, facts FROM facts"))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = write_folder(tmp_path / "data", per_class=8, size=12)
    (root / "blob" / "notes.png").write_text("not an image")  # skipped, with its reason
    return age(root)


def test_second_run_matches_the_first_and_the_uncached_one(folder, tmp_path, capsys):
    cache = tmp_path / "cache"
    first = record(classification(folder, cache))
    rows = stored(cache)
    assert (
        len(rows) == 25
        and '"error": "not an image (content is text)"' in rows[str(folder / "blob" / "notes.png")]
    )
    second = record(classification(folder, cache))
    plain = record(classification(folder, False))
    assert first == second == plain
    assert first[3] == [(str(folder / "blob" / "notes.png"), "not an image (content is text)")]
    assert "warning" not in capsys.readouterr().err


def test_facts_come_from_the_cache_while_the_file_is_unchanged(folder, tmp_path):
    cache = IndexCache(tmp_path / "cache")
    path = str(folder / "blob" / "blob_000.png")
    real = gather_facts([(path, "file")], cache, 1, "test")[(path, "file")]
    assert real["sha256"] == hashlib.sha256(Path(path).read_bytes()).hexdigest()
    # A row written for the file's current size and times is trusted without reading it...
    cache.store([((path, "file"), file_stat(path), {"sha256": "0" * 64, "bytes": 1})])
    assert gather_facts([(path, "file")], cache, 1, "test")[(path, "file")]["sha256"] == "0" * 64
    # ...and ignored once the file is touched.
    age(folder, 1800)
    assert gather_facts([(path, "file")], cache, 1, "test")[(path, "file")] == real


def test_a_modified_file_is_read_again(folder, tmp_path):
    cache = tmp_path / "cache"
    target = folder / "stripes_h" / "stripes_h_003.png"
    before = dict((p, sha) for p, sha, *_ in classification(folder, cache).manifest_rows())
    Image.fromarray(np.full((12, 12), 7, np.uint8)).save(target)
    age(folder, 1800)
    after = dict((p, sha) for p, sha, *_ in classification(folder, cache).manifest_rows())
    new = hashlib.sha256(target.read_bytes()).hexdigest()
    assert after[str(target)] == new != before[str(target)]
    assert {p: s for p, s in after.items() if p != str(target)} == {
        p: s for p, s in before.items() if p != str(target)
    }
    assert new in stored(cache)[str(target)]


def test_same_size_rewrite_with_the_old_mtime_is_read_again(tmp_path):
    """``cp -p`` and ``rsync -t`` restore the modification time; the change time still moves."""
    cache = IndexCache(tmp_path / "cache")
    path = tmp_path / "labels.txt"
    path.write_text("0 0.5 0.5 0.1 0.1\n")
    age(tmp_path)
    job = (str(path), "file")
    first = gather_facts([job], cache, 1, "test")[job]
    old = path.stat()
    time.sleep(0.05)
    path.write_text("1 0.5 0.5 0.1 0.1\n")  # same size
    os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))
    second = gather_facts([job], cache, 1, "test")[job]
    assert second["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest() != first["sha256"]


def test_two_runs_index_into_one_cache_at_once(folder, tmp_path, capsys):
    cache = tmp_path / "cache"
    with ThreadPoolExecutor(2) as pool:
        both = list(pool.map(lambda _: record(classification(folder, cache)), range(2)))
    assert both[0] == both[1] == record(classification(folder, cache))
    assert len(stored(cache)) == 25 and "warning" not in capsys.readouterr().err


def test_the_cache_never_writes_into_the_data(folder, tmp_path, monkeypatch, capsys):
    before = tree_digest(folder)
    assert len(classification(folder, tmp_path / "cache").index.samples) == 24
    with pytest.raises(UserError, match="lies inside the data folder"):
        _ = classification(folder, folder / ".cache").index
    monkeypatch.setenv("MLCYCLE_CACHE_DIR", str(folder / "blob" / ".index"))
    data = ImageClassificationData(source="folder", root=str(folder), image_size=8)
    assert len(data.index.samples) == 24
    assert "indexing without the cache" in capsys.readouterr().err
    assert tree_digest(folder) == before and not (folder / ".cache").exists()
    assert (tmp_path / "cache" / CACHE_FILE).is_file()


def test_a_corrupt_cache_is_ignored_with_one_warning(folder, tmp_path, capsys):
    cache = tmp_path / "cache"
    cache.mkdir()
    garbage = b"this is not a database" * 100
    (cache / CACHE_FILE).write_bytes(garbage)
    plain = record(classification(folder, False))
    assert record(classification(folder, cache)) == plain
    assert record(classification(folder, cache)) == plain
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "cannot be used" in warnings[0]
    assert (cache / CACHE_FILE).read_bytes() == garbage  # left for the user to delete


def test_workers_read_and_load_in_processes_alike(tmp_path):
    root = age(write_folder(tmp_path / "many", per_class=100, size=8))  # 300: above MIN_PARALLEL
    one = classification(root, False, index_workers=1, cache_images=True)
    two = classification(root, tmp_path / "cache", index_workers=2, cache_images=True)
    assert record(one) == record(two)
    assert two.index.cache is None  # items are decoded when a loader is made, not when indexing
    two.dataset("val")
    assert len(two.index.cache) == 300
    for position in (0, 150, 299):
        assert np.array_equal(two.index.cache[position], one.index.item(position))
    assert classification(root, tmp_path / "cache").index_workers == available_cores()
    with pytest.raises(UserError, match="index_workers=0 must be 1 or more"):
        classification(root, False, index_workers=0)


def test_an_image_gone_before_loading_stops_with_its_name(folder, tmp_path):
    data = classification(folder, tmp_path / "cache", cache_images=True)
    gone = Path(data.index.files[0][0][0])
    gone.unlink()
    with pytest.raises(UserError, match=f"'{gone}' can no longer be used: file not found"):
        data.dataset("train")


def test_segmentation_record_is_the_same_with_the_cache(tmp_path):
    root = write_shape_masks(tmp_path / "seg", count=10, size=16)
    Image.fromarray(np.zeros((12, 16), np.uint8)).save(root / "masks" / "0001.png")
    beyond = np.zeros((16, 16), np.uint8)
    beyond[2, 2] = 7
    Image.fromarray(beyond).save(root / "masks" / "0002.png")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(root / "masks" / "0003.png")
    (root / "images" / "0004.png").write_bytes(b"")
    age(root)

    def make(cache):
        return SegmentationData(
            source="masks", root=str(root), image_size=8, test_fraction=0, index_cache=cache
        )

    cache = str(tmp_path / "cache")
    cold, warm, plain = record(make(cache)), record(make(cache)), record(make(False))
    assert cold == warm == plain
    reasons = sorted(reason for _, reason in cold[3])
    assert reasons == [
        "image cannot be read: zero bytes",
        "mask '0001.png' is 16x12 (WxH) but its image is 16x16",
        "mask holds class index 7, but there are 4 classes (0..3; 255 is ignored)",
        "mask is RGB; a mask holds class indices (a PNG in mode L or P), not colours",
    ]
    warm_data = make(cache)
    position = warm_data.index.positions["train"][0]
    image, mask = warm_data.raw_pair(position)
    assert image.shape == (8, 8, 3) and mask.shape == (8, 8) and mask.max() <= 3


def test_detection_record_is_the_same_with_the_cache(tmp_path):
    root = age(write_shape_boxes(tmp_path / "det", count=12, size=32, radius=(3, 6)))

    def make(cache):
        return DetectionData(
            source="coco", annotations=str(root / "annotations.json"), image_size=32,
            index_cache=cache,
        )  # fmt: skip

    cache = str(tmp_path / "cache")
    cold, warm, plain = record(make(cache)), record(make(cache)), record(make(False))
    assert cold == warm == plain
    data = make(cache)
    assert [s.boxes.tolist() for s in data.index.samples] == [
        s.boxes.tolist() for s in make(False).index.samples
    ]
    assert data.prepared(0).image.shape == (32, 32, 3)


def test_command_line_keys():
    data = build_data(
        ["configs/image_folder.yaml"],
        ["--data.root=/tmp", "--data.index_cache=false", "--data.index_workers=2"],
    )
    assert data.hparams.index_cache is False and data.index_workers == 2
    data = build_data(["configs/image_folder.yaml"], ["--data.root=/tmp"])
    assert data.hparams.index_cache is None and data.hparams.index_workers == "auto"
