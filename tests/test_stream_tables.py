"""Tables streamed: ``mlcycle optimize`` writes a table's rows into litdata's chunks, and
``data.source: stream`` alone trains the MLP from them (tables/stream.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

pytest.importorskip("litdata", reason="the 'stream' extra (litdata) is not installed")

MESSY = "configs/tables/messy.yaml"


def optimize(out: Path, *extra: str) -> dict:
    from mlcycle.commands.optimize import main

    return main([f"--config={MESSY}", f"--out={out}", *extra])


@pytest.fixture(scope="module")
def stream(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tables") / "messy"
    optimize(out)
    return out


def both(stream: Path, overrides: dict | None = None):
    from mlcycle.quality.config import build_data

    plain = build_data([MESSY], overrides)
    streamed = build_data([MESSY], {**(overrides or {}), "source": "stream", "path": str(stream)})
    return plain, streamed


def test_stream_gives_the_files_rows_and_splits(stream):
    plain, streamed = both(stream)
    assert type(streamed).__name__ == "StreamTableData"
    record = json.loads((stream / "stream.json").read_text())
    assert record["kind"] == "tabular" and record["reader"].endswith("StreamTableData")
    assert streamed.fingerprint == plain.fingerprint == record["fingerprint"]
    assert streamed.table.splits == plain.table.splits
    for split in ("train", "val", "test"):
        assert streamed.split_positions(split) == plain.split_positions(split)
        pd.testing.assert_frame_equal(streamed.frame(split), plain.frame(split))
    x, y = streamed.arrays("val")
    np.testing.assert_allclose(x, plain.arrays("val")[0], rtol=1e-6)
    np.testing.assert_array_equal(y, plain.arrays("val")[1])
    assert streamed.feature_names == plain.feature_names
    assert streamed.class_counts == plain.class_counts
    # the train rows streamed are the file's cross-fitted matrix, row for row
    xs, ys, positions = (torch_cat(part) for part in zip(*streamed.train_dataloader(), strict=True))
    order = {p: i for i, p in enumerate(plain.split_positions("train"))}
    rows = [order[p] for p in positions.tolist()]
    np.testing.assert_allclose(xs.numpy(), plain.arrays("train")[0][rows], rtol=1e-6)
    np.testing.assert_array_equal(ys.numpy(), plain.arrays("train")[1][rows])


def torch_cat(parts):
    import torch

    return torch.cat(list(parts))


def test_test_split_is_never_streamed(stream):
    _, streamed = both(stream)
    test = set(streamed.split_positions("test"))
    assert test and (stream / "test" / "index.json").is_file()
    seen = {int(p) for batch in streamed.train_dataloader() for p in batch[2]}
    seen |= {int(p) for batch in streamed.val_dataloader() for p in batch[2]}
    assert seen and not seen & test
    assert streamed.table._frame is None  # training read no whole table


def test_csv_rows_round_trip(tmp_path):
    """A CSV table (text, numbers with gaps, dates) comes back as read."""
    rng = np.random.default_rng(0)
    n = 120
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "count": rng.integers(0, 9, n),
            "city": rng.choice(["Oslo", "Lyon", None], n),
            "day": pd.date_range("2024-01-01", periods=n, freq="D").astype(str),
            "y": rng.choice(["a", "b"], n),
        }
    )
    frame.loc[3, "x"] = np.nan
    csv = tmp_path / "t.csv"
    frame.to_csv(csv, index=False)
    from mlcycle.commands.optimize import main
    from mlcycle.quality.config import build_data

    args = ["--data.source=csv", f"--data.path={csv}", "--data.target=y"]
    main(["--data.class_path=mlcycle.tables.TabularData", *args, f"--out={tmp_path / 's'}"])
    config = ["--data.class_path=mlcycle.tables.TabularData", *args]
    plain = build_data([], config)
    streamed = build_data([], [*config, "--data.source=stream", f"--data.path={tmp_path / 's'}"])
    assert streamed.fingerprint == plain.fingerprint
    for split in ("train", "val", "test"):
        pd.testing.assert_frame_equal(streamed.frame(split), plain.frame(split))


def test_source_stream_alone_trains_the_mlp(stream, tmp_path):
    """``--config configs/tables/messy.yaml --data.source stream --data.path OUT`` trains the
    MLP; its val F1 is the file's within tolerance; config.yaml names the reader."""
    from mlcycle.commands.train import main

    common = [f"--config={MESSY}", "--trainer.max_epochs=4", "--trainer.enable_progress_bar=false"]
    runs = {}
    for name, extra in (
        ("file", []),
        ("stream", ["--data.source=stream", f"--data.path={stream}"]),
    ):
        runs[name] = main([*common, *extra, f"--run_dir={tmp_path / name}"])
    config = yaml.safe_load((runs["stream"] / "config.yaml").read_text())
    assert config["data"]["class_path"] == "mlcycle.tables.stream.StreamTableData"
    f1 = {k: json.loads((r / "metrics.json").read_text())["val/f1"] for k, r in runs.items()}
    assert f1["stream"] > 0.55 and abs(f1["stream"] - f1["file"]) < 0.08, f1
    manifests = [  # the same rows, hashes, labels and splits; the source column says stream
        [line.rsplit(",", 1)[0] for line in (r / "data_manifest.csv").read_text().splitlines()]
        for r in runs.values()
    ]
    assert manifests[0] == manifests[1] and len(manifests[0]) > 1000
