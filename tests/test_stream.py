"""Streamed data (litdata): ``mlcycle optimize`` to an S3-compatible server on loopback (moto's
server mode, started here), and training's StreamImageData reading it back."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("litdata", reason="the 'stream' extra (litdata) is not installed")
moto_server = pytest.importorskip("moto.server", reason="moto[server] is not installed")

BUCKET = "mlcycle-streams"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def endpoint():
    """A moto S3 server on 127.0.0.1 with one bucket; the AWS variables point at it."""
    import boto3

    saved = {k: os.environ.get(k) for k in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=url).create_bucket(Bucket=BUCKET)
    yield url
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """60 tiny RGB images in three class folders, each one different."""
    root = tmp_path_factory.mktemp("images") / "data"
    rng = np.random.default_rng(0)
    for c, name in enumerate(["cat", "dog", "owl"]):
        (root / name).mkdir(parents=True)
        for i in range(20):
            pixels = rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)
            pixels[..., c] = 200
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def folder_data(root: Path, **kwargs):
    from mlcycle.data import ImageClassificationData

    return ImageClassificationData(
        source="folder", root=str(root), image_size=8, batch_size=8, index_cache=False, **kwargs
    )


def stream_data(url: str, endpoint: str | None, **kwargs):
    from mlcycle.data.stream import StreamImageData

    options = {"endpoint_url": endpoint} if endpoint else {}
    kwargs = {"image_size": 8, "batch_size": 8, **kwargs}
    return StreamImageData(root=url, source_options=options, **kwargs)


@pytest.fixture(scope="module")
def written(endpoint, folder):
    """The folder written to s3://BUCKET/digits by ``mlcycle optimize`` (in this process)."""
    from mlcycle.commands.optimize import main

    url = f"s3://{BUCKET}/tiny"
    record = main(
        [
            "--data.class_path=mlcycle.data.ImageClassificationData",
            "--data.source=folder",
            f"--data.root={folder}",
            "--data.image_size=8",
            "--data.index_cache=false",
            f"--out={url}",
            f'--storage_options={{"endpoint_url": "{endpoint}"}}',
        ]
    )
    return url, record


def test_stream_gives_the_folders_samples(written, endpoint, folder):
    url, record = written
    dm_folder, dm_stream = folder_data(folder), stream_data(url, endpoint)
    assert dm_stream.fingerprint == dm_folder.fingerprint == record["fingerprint"]
    assert dm_stream.class_names == dm_folder.class_names == ["cat", "dog", "owl"]
    assert dm_stream.index.splits == dm_folder.index.splits
    assert dm_stream.index.hashes == dm_folder.index.hashes
    np.testing.assert_allclose(dm_stream.normalization, dm_folder.normalization)
    # every train item streamed: the folder's pixels, label and position, each once
    train = dm_stream.dataset("train", augment=False)
    plain = dm_folder.dataset("train", augment=False)
    seen = {}
    for image, label, position in train:
        seen[position] = (image, label)
    assert sorted(seen) == sorted(dm_folder.index.positions["train"])
    for i in range(len(plain)):
        image, label, position = plain[i]
        np.testing.assert_array_equal(seen[position][0].numpy(), image.numpy())
        assert seen[position][1] == label
    # val is read whole, as a folder's (galleries pick its images by position)
    val = dm_folder.index.positions["val"][0]
    np.testing.assert_array_equal(dm_stream.raw_image(val), dm_folder.raw_image(val))


def test_test_split_is_apart(written, endpoint):
    import boto3

    url, record = written
    keys = [
        o["Key"]
        for o in boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket=BUCKET)[
            "Contents"
        ]
    ]
    assert any(k.startswith("tiny/test/chunk-") for k in keys)
    dm = stream_data(url, endpoint)
    test_paths = {str(dm.index.samples[p].path) for p in dm.index.positions["test"]}
    assert record["split_counts"]["test"] == len(test_paths) > 0
    streamed = {dm.index.samples[p].path for _, _, p in dm.dataset("train")}
    streamed |= {dm.index.samples[p].path for _, _, p in dm.dataset("val")}
    assert not test_paths & {str(p) for p in streamed}


def test_loader_resumes_mid_epoch(written, endpoint):
    url, _ = written
    dm = stream_data(url, endpoint, batch_size=4)
    loader = dm.train_dataloader()
    batches = iter(loader)
    first = [next(batches)[2].tolist() for _ in range(2)]
    state = loader.state_dict()
    rest = [b[2].tolist() for b in batches]
    again = stream_data(url, endpoint, batch_size=4).train_dataloader()
    again.load_state_dict(state)
    assert [b[2].tolist() for b in again] == rest
    assert len(first) == 2 and rest


def _rank_positions(rank: int, world: int, port: int, url: str, endpoint: str, out: str) -> None:
    import torch.distributed as dist

    os.environ.update(CREDENTIALS, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    dm = stream_data(url, endpoint)
    positions = [p for _, _, p in dm.dataset("train", augment=False)]
    Path(out, f"{rank}.txt").write_text(" ".join(map(str, positions)))
    dist.destroy_process_group()


@pytest.mark.slow  # two spawned processes import torch: ~30 s on 2 busy cores
def test_two_ddp_ranks_see_disjoint_shards(written, endpoint, tmp_path):
    import torch.multiprocessing as mp

    url, record = written
    mp.spawn(_rank_positions, args=(2, free_port(), url, endpoint, str(tmp_path)), nprocs=2)
    ranks = [set(map(int, (tmp_path / f"{r}.txt").read_text().split())) for r in range(2)]
    assert ranks[0] and ranks[1] and not ranks[0] & ranks[1]
    assert len(ranks[0] | ranks[1]) >= record["split_counts"]["train"] - 1  # drop_last evens


def test_local_folder_stream(folder, tmp_path):
    from mlcycle.data.stream_store import Store
    from mlcycle.data.stream_write import write_stream

    out = tmp_path / "stream"
    write_stream(folder_data(folder), Store(str(out)))
    assert (out / "test" / "index.json").is_file() and (out / "stream.json").is_file()
    assert stream_data(str(out), None).fingerprint == folder_data(folder).fingerprint


def test_train_batches_mix_the_classes(folder, tmp_path):
    """Written in class order, litdata's shuffle (chunks, then short runs within them) gave
    batches of one or two classes; the train split is written in a shuffled order."""
    from mlcycle.data.stream_store import Store
    from mlcycle.data.stream_write import write_stream

    many = tmp_path / "many"  # 6 classes of 200: written in order, a batch of 64 held 2-3
    for c in range(6):
        (many / f"c{c}").mkdir(parents=True)
        for i in range(200):
            Image.new("L", (4, 4), color=(c * 50 + i) % 256).save(many / f"c{c}" / f"{i}.png")
    out = tmp_path / "stream"
    write_stream(folder_data(many), Store(str(out)))
    batches = stream_data(str(out), None, batch_size=64).train_dataloader()
    labels = [set(batch[1].tolist()) for batch in batches]
    assert labels and all(len(classes) >= 5 for classes in labels), labels


def test_unreachable_endpoint_is_one_line(folder, tmp_path):
    port = free_port()  # closed again: nothing listens there
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "scripts/optimize_data.py", "--data.source=folder"]
        + [f"--data.root={folder}", f"--out=s3://{BUCKET}/x"]
        + [f'--storage_options={{"endpoint_url": "http://127.0.0.1:{port}"}}'],
        capture_output=True,
        text=True,
        env={**os.environ, **CREDENTIALS},
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0], proc.stderr
    assert time.monotonic() - start < 30  # imports included; the check itself takes < 3 s
