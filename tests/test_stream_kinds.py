"""The stream seam (data/stream_kinds.py): each kind of data says how it is written and which
class reads it back; ``data.source: stream`` alone trains from what ``mlcycle optimize`` wrote."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import run_train, write_folder

pytest.importorskip("litdata", reason="the 'stream' extra (litdata) is not installed")

READER = "mlcycle.data.stream.StreamImageData"


@pytest.fixture(scope="module")
def image_stream(tmp_path_factory) -> tuple[Path, Path, dict]:
    """A tiny image folder written by ``mlcycle optimize`` into a local stream."""
    from mlcycle.commands.optimize import main

    base = tmp_path_factory.mktemp("stream_kinds")
    folder = write_folder(base / "images", per_class=10)
    out = base / "stream"
    record = main(
        [
            "--config=configs/image_folder.yaml",
            f"--data.root={folder}",
            "--data.image_size=16",
            "--data.index_cache=false",
            f"--out={out}",
        ]
    )
    return folder, out, record


def test_registry_names_the_image_writer_and_reader():
    from mlcycle.data.stream_kinds import STREAM_KINDS

    assert "classification" in STREAM_KINDS.names()
    assert STREAM_KINDS.get("classification").reader == READER


def test_stream_json_records_kind_and_reader(image_stream):
    _, out, record = image_stream
    written = json.loads((out / "stream.json").read_text())
    assert written == record
    assert written["kind"] == "classification" and written["reader"] == READER
    assert written["split_counts"]["train"] > 0


def test_optimize_says_source_stream(image_stream, capsys):
    from mlcycle.commands.optimize import main

    folder, out, _ = image_stream
    main([f"--data.root={folder}", "--data.index_cache=false", f"--out={out.parent / 'again'}"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == f"train on it: --data.source stream --data.root {out.parent / 'again'}"


def test_source_stream_alone_trains_images(image_stream, tmp_path):
    """``--config configs/image_folder.yaml --data.source stream --data.root OUT`` trains, and
    the run's config.yaml names the reader, so later stages load the stream's class."""
    folder, out, record = image_stream
    run = run_train(out, tmp_path / "run", "--data.source=stream")
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["data"]["class_path"] == READER
    assert config["data"]["init_args"]["source"] == "stream"
    assert json.loads((run / "metrics.json").read_text())
    from mlcycle.quality.config import build_data

    dm = build_data([str(run / "config.yaml")])  # as evaluate/export load the run's data
    assert type(dm).__name__ == "StreamImageData" and dm.fingerprint == record["fingerprint"]


def test_a_kind_without_writer_is_one_line(tmp_path):
    """A data module with no stream writer for its kind: one line naming it, exit 2, nothing
    written (Lightning's BoringDataModule declares no data_kind)."""
    proc = subprocess.run(
        [sys.executable, "scripts/optimize_data.py"]
        + ["--data.class_path=lightning.pytorch.demos.boring_classes.BoringDataModule"]
        + [f"--out={tmp_path / 'out'}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "BoringDataModule" in lines[0], proc.stderr
    assert "cannot be written into a stream" in lines[0]
    assert not (tmp_path / "out").exists()


def test_unknown_kind_names_the_kinds():
    from mlcycle.core.errors import UserError
    from mlcycle.data.stream_kinds import stream_kind_of

    class Odd:
        data_kind = "point_clouds"

    with pytest.raises(UserError, match="'point_clouds' has no stream writer.*classification"):
        stream_kind_of(Odd())


def test_missing_stream_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        run_train(tmp_path / "nothing", tmp_path / "run", "--data.source=stream")
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(lines) == 1, lines
    assert "stream.json' does not exist" in lines[0] and "mlcycle optimize" in lines[0]
    assert not (tmp_path / "run").exists()


def _row(i: int) -> dict:
    return {"index": i}


def test_a_write_keeps_out_of_the_shared_cache(tmp_path, monkeypatch):
    """litdata empties its cache folder when a write starts, which took the index from another
    write running at the same time (CI): each write now caches in a folder of its own."""
    import os

    from mlcycle.data.stream_kinds import write_split
    from mlcycle.data.stream_store import Store

    shared = tmp_path / "shared"
    (shared / "chunks").mkdir(parents=True)
    (shared / "chunks" / "index.json").write_text("another write's index")
    monkeypatch.setenv("DATA_OPTIMIZER_CACHE_FOLDER", str(shared / "chunks"))
    monkeypatch.delenv("DATA_OPTIMIZER_DATA_CACHE_FOLDER", raising=False)
    write_split(Store(str(tmp_path / "out")), "train", _row, list(range(5)), 1, "64kb")
    assert (shared / "chunks" / "index.json").read_text() == "another write's index"
    assert (tmp_path / "out" / "train" / "index.json").is_file()
    assert os.environ["DATA_OPTIMIZER_CACHE_FOLDER"] == str(shared / "chunks")
    assert "DATA_OPTIMIZER_DATA_CACHE_FOLDER" not in os.environ
