"""Segmentation and detection streamed (litdata, local folders): a stream gives the folder's
exact images, masks and boxes; the sealed test split is never streamed; a short run trains
from each and evaluate reads the test split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("litdata", reason="the 'stream' extra (litdata) is not installed")

from mlcycle.core.errors import UserError  # noqa: E402
from mlcycle.data.detection import DetectionData  # noqa: E402
from mlcycle.data.segmentation import SegmentationData  # noqa: E402
from mlcycle.data.shapes import write_shape_boxes, write_shape_masks  # noqa: E402
from mlcycle.data.stream_dense_data import (  # noqa: E402
    StreamDetectionData,
    StreamSegmentationData,
)

KINDS = ("segmentation", "detection")


def folder_data(kind: str, root: Path):
    if kind == "segmentation":
        return SegmentationData(
            source="masks", root=str(root), image_size=24, batch_size=4, index_cache=False
        )
    return DetectionData(  # not square: the boxes scale differently in x and y
        source="coco",
        annotations=str(root / "annotations.json"),
        image_size=[32, 40],
        batch_size=4,
        index_cache=False,
    )


def stream_data(kind: str, url: Path, batch_size: int = 4):
    if kind == "segmentation":
        return StreamSegmentationData(root=str(url), image_size=24, batch_size=batch_size)
    return StreamDetectionData(root=str(url), image_size=[32, 40], batch_size=batch_size)


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("dense")
    return {
        "segmentation": write_shape_masks(base / "seg", count=24, size=32),
        "detection": write_shape_boxes(
            base / "det", count=24, size=48, radius=(4, 10), negatives=0.2
        ),
    }


def optimize_args(kind: str, folder: Path, url: Path) -> list[str]:
    """``mlcycle optimize`` of the kind's quick-start config on the tiny folder."""
    common = ["--data.index_cache=false", f"--data.root={folder}", f"--out={url}"]
    if kind == "segmentation":
        config = ["--config=configs/segment_quickstart.yaml", "--data.source=masks"]
        return [*config, "--data.image_size=24", *common]
    config = ["--config=configs/detect_quickstart.yaml", "--data.source=coco"]
    annotations = f"--data.annotations={folder / 'annotations.json'}"
    return [*config, annotations, "--data.image_size=[32, 40]", *common]


@pytest.fixture(scope="module")
def streams(folders, tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """Each folder written by ``mlcycle optimize`` (in this process) into a local stream."""
    from mlcycle.commands.optimize import main as optimize

    out = {}
    for kind in KINDS:
        url = tmp_path_factory.mktemp("streams") / kind
        out[kind] = url, optimize(optimize_args(kind, folders[kind], url))
    return out


def assert_same_item(kind: str, a, b) -> None:
    """Two dataset items (image tensor, mask or boxes target, position) are equal."""
    np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
    if kind == "segmentation":
        np.testing.assert_array_equal(a[1].numpy(), b[1].numpy())
    else:
        for key in ("boxes", "labels", "iscrowd"):
            np.testing.assert_array_equal(a[1][key].numpy(), b[1][key].numpy())
    assert a[2] == b[2]


def assert_same_prepared(kind: str, a, b) -> None:
    if kind == "segmentation":
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    else:
        for key in ("image", "boxes", "labels", "crowd"):
            np.testing.assert_array_equal(getattr(a, key), getattr(b, key))


@pytest.mark.parametrize("kind", KINDS)
def test_stream_gives_the_folders_samples(kind, folders, streams):
    url, record = streams[kind]
    plain, streamed = folder_data(kind, folders[kind]), stream_data(kind, url)
    assert record["kind"] == kind
    assert streamed.fingerprint == plain.fingerprint == record["fingerprint"]
    assert streamed.class_names == plain.class_names
    assert streamed.index.category_ids == plain.index.category_ids
    assert streamed.index.splits == plain.index.splits
    assert streamed.index.hashes == plain.index.hashes
    np.testing.assert_allclose(streamed.normalization, plain.normalization)
    # every train item streamed once: the folder's pixels, mask or boxes, and position
    seen = {item[2]: item for item in streamed.dataset("train", augment=False)}
    folder_train = plain.dataset("train", augment=False)
    assert sorted(seen) == sorted(plain.index.positions["train"]) == sorted(folder_train.positions)
    for i in range(len(folder_train)):
        item = folder_train[i]
        assert_same_item(kind, seen[item[2]], item)
    if kind == "detection":  # the shapes have objects, and a few images have none
        counts = [len(seen[p][1]["labels"]) for p in seen]
        assert max(counts) > 0
    # val is read whole, as a folder's: galleries and metrics pick its items by position;
    # a train item read by itself (the chance level's masks) comes from its chunk
    for p in plain.index.positions["val"] + plain.index.positions["train"][:3]:
        assert_same_prepared(kind, streamed.prepared(p), plain.prepared(p))
    if kind == "detection":
        for p in plain.index.positions["val"]:
            a, b = streamed.original(p), plain.original(p)
            np.testing.assert_array_equal(a.boxes, b.boxes)
            assert a.size == b.size and a.image_id == b.image_id


@pytest.mark.parametrize("kind", KINDS)
def test_test_split_is_apart(kind, streams):
    url, record = streams[kind]
    assert (url / "test" / "index.json").is_file()
    dm = stream_data(kind, url)
    test = set(dm.index.positions["test"])
    assert record["split_counts"]["test"] == len(test) > 0
    streamed = {item[2] for item in dm.dataset("train")}
    streamed |= {item[2] for item in dm.dataset("val")}
    assert streamed and not streamed & test
    evaluated = {int(p) for batch in dm.split_dataloader("test") for p in batch[2]}
    assert evaluated == test  # evaluate alone reads the sealed split


def test_stream_of_another_kind_is_refused(streams):
    url, _ = streams["detection"]
    with pytest.raises(UserError, match="holds detection data, not segmentation"):
        _ = stream_data("segmentation", url).index


def test_existing_stream_is_not_overwritten(folders, streams):
    from mlcycle.data.stream_kinds import write
    from mlcycle.data.stream_store import Store

    url, _ = streams["segmentation"]
    before = (url / "stream.json").read_text()
    with pytest.raises(UserError, match="already holds a stream"):
        write(folder_data("segmentation", folders["segmentation"]), Store(str(url)))
    assert (url / "stream.json").read_text() == before


def train_args(kind: str, url: Path, run_dir: Path) -> list[str]:
    """The kind's quick-start config trained from the stream: ``data.source: stream`` alone."""
    common = [
        "--data.source=stream",
        f"--data.root={url}",
        "--data.batch_size=8",
        "--trainer.max_epochs=1",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--run_dir={run_dir}",
    ]
    if kind == "segmentation":
        return [
            "--config=configs/segment_quickstart.yaml",
            "--data.image_size=24",
            "--model.arch_options={width: 8, depth: 2}",
            *common,
        ]
    return ["--config=configs/detect_quickstart.yaml", "--data.image_size=[32, 40]", *common]


@pytest.mark.parametrize("kind", KINDS)
def test_short_run_trains_from_the_stream(kind, streams, tmp_path):
    from mlcycle.commands.evaluate import main as evaluate
    from mlcycle.commands.train import main as train

    url, record = streams[kind]
    run = train(train_args(kind, url, tmp_path / "run"))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "finished" and metrics["epochs"] == 1
    assert metrics["monitor"] in metrics
    info = json.loads((run / "data.json").read_text())
    assert info["fingerprint"] == record["fingerprint"] and info["stream"] == str(url)
    assert record["reader"] in (run / "config.yaml").read_text()  # later stages load it
    assert (run / "splits.csv").read_text() == (url / "splits.csv").read_text()
    result = evaluate(["--run", str(run), "--split", "test"])
    assert result["images"] == record["split_counts"]["test"]


def test_detection_loader_resumes_mid_epoch(streams):
    url, _ = streams["detection"]
    loader = stream_data("detection", url, batch_size=2).train_dataloader()
    batches = iter(loader)
    first = [next(batches)[2].tolist() for _ in range(2)]
    state = loader.state_dict()
    rest = [b[2].tolist() for b in batches]
    again = stream_data("detection", url, batch_size=2).train_dataloader()
    again.load_state_dict(state)
    resumed = list(again)
    assert [b[2].tolist() for b in resumed] == rest and len(first) == 2 and rest
    assert all(len(targets) == len(index) for _, targets, index in resumed)  # boxes as lists
