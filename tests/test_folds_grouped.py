"""Honest cross-validation: a table or a manifest split by ``data.group_column`` is cut into
grouped folds (no group in two folds), one split by ``data.time_column`` into forward-chaining
folds (no fold trains on rows later than those it validates, ``fold_gap`` rows left out); the
fold files say so, and a missing column is one line. The pool functions run directly on tiny
tables in tmp_path: no training."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlcycle.core.errors import UserError
from mlcycle.selection.folds import UNUSED, group_folds, time_folds
from mlcycle.tables.data import TabularData
from mlcycle.tables.selection.pool import build_table_pool


def table_csv(folder: Path, rows: int = 240, groups: int = 24) -> Path:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "patient": [f"p{i % groups}" for i in range(rows)],
            "day": pd.date_range("2024-01-01", periods=rows, freq="D").strftime("%Y-%m-%d"),
            "x": rng.normal(size=rows).round(3),
            "z": rng.integers(0, 5, size=rows),
        }
    )
    frame["label"] = np.where(frame["x"] + 0.3 * frame["z"] > 0.6, "yes", "no")
    frame["value"] = (2 * frame["x"] + frame["z"]).round(3)
    path = folder / "table.csv"
    frame.sample(frac=1, random_state=1).to_csv(path, index=False)  # rows not in time order
    return path


def table_data(path: Path, target: str = "label", **split) -> TabularData:
    drop = ["value"] if target == "label" else ["label"]
    data = TabularData(source="csv", path=str(path), target=target, drop=drop, **split)
    data.setup()
    return data


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("target", ["label", "value"])
def test_table_groups_never_share_a_fold(tmp_path, target):
    data = table_data(table_csv(tmp_path), target, group_column="patient")
    pool = build_table_pool(data, 4, seed=3)
    frame = data.table.frame
    folds_of: dict[str, set[int]] = {}
    for position, fold in zip(pool.positions, pool.folds, strict=True):
        folds_of.setdefault(frame["patient"].iloc[position], set()).add(int(fold))
    assert all(len(f) == 1 for f in folds_of.values())
    assert sorted(set(pool.folds.tolist())) == [0, 1, 2, 3]
    files = pool.write(tmp_path, 4)
    listed = read_rows(tmp_path / "folds.csv")
    assert {r["patient"] for r in listed} == set(folds_of)  # folds.csv shows the group
    for fold, file in enumerate(files):
        rows = {r["path"]: r["split"] for r in read_rows(file)}
        val = {
            frame["patient"].iloc[p]
            for p, k in zip(pool.positions, pool.paths, strict=True)
            if rows[k] == "val"
        }
        train = {
            frame["patient"].iloc[p]
            for p, k in zip(pool.positions, pool.paths, strict=True)
            if rows[k] == "train"
        }
        assert val and train and not val & train, fold


def test_grouped_folds_are_stratified_where_the_labels_allow():
    groups = [f"g{i // 3}" for i in range(120)]  # 40 groups of 3 rows, one label each
    labels = ["a" if (i // 3) % 4 else "b" for i in range(120)]
    hashes = [f"h{i}" for i in range(120)]
    folds = group_folds(groups, hashes, labels, 5, seed=0)
    for fold in range(5):
        held = [labels[i] for i in range(120) if folds[i] == fold]
        assert 0.15 <= held.count("b") / len(held) <= 0.35  # 25% b overall
    order = np.random.default_rng(1).permutation(120)  # the listing order changes nothing
    shuffled = group_folds(
        [groups[i] for i in order], [hashes[i] for i in order], [labels[i] for i in order], 5, 0
    )
    assert shuffled == [folds[i] for i in order]


def test_table_time_folds_never_train_on_the_future(tmp_path):
    data = table_data(table_csv(tmp_path), time_column="day", test_fraction=0.1)
    pool = build_table_pool(data, 3, seed=0, gap=5)
    days = pd.to_datetime(data.table.frame["day"])
    key_day = dict(zip(data.table.keys, days, strict=True))
    files = pool.write(tmp_path, 3)
    validated = set()
    for fold, file in enumerate(files):
        rows = read_rows(file)
        train = sorted(key_day[r["path"]] for r in rows if r["split"] == "train")
        val = sorted(key_day[r["path"]] for r in rows if r["split"] == "val")
        unused = [r for r in rows if r["split"] == UNUSED]
        assert train and val and unused
        assert train[-1] < val[0], fold  # forward chaining
        gap = [d for d in days if train[-1] < d < val[0]]
        assert len(gap) >= 5  # the gap rows neither train nor validate
        validated |= {r["path"] for r in rows if r["split"] == "val"}
        assert sum(r["split"] == "test" for r in rows) == len(data.split_positions("test"))
    assert validated == set(pool.paths)  # each pool row is predicted by exactly one fold
    oldest = min(key_day[k] for k in pool.paths)
    assert all(key_day[k] < oldest for k in pool.plan if k not in set(pool.paths))
    train_rows, val_rows = pool.fold_rows(1)
    assert (
        days.iloc[[pool.positions[i] for i in train_rows]].max()
        < days.iloc[[pool.positions[i] for i in val_rows]].min()
    )


def test_time_folds_need_enough_times_and_rows():
    times = pd.Series([1, 1, 1, 2, 2, 2])
    with pytest.raises(UserError, match="distinct time"):
        time_folds(times, [f"h{i}" for i in range(6)], 3, 0)
    with pytest.raises(UserError, match="fold_gap 4"):
        time_folds(pd.Series(range(12)), [f"h{i}" for i in range(12)], 2, 4)


def test_missing_group_or_time_column_is_one_line(tmp_path):
    path = table_csv(tmp_path)
    for key in ("group_column", "time_column"):
        with pytest.raises(UserError, match=f"data.{key} 'visit'"):
            table_data(path, **{key: "visit"})


def manifest(folder: Path, images: int = 48, patients: int = 12) -> Path:
    """A CSV manifest of tiny distinct PNGs with a patient and a capture date per image."""
    from PIL import Image

    rng = np.random.default_rng(0)
    (folder / "img").mkdir(parents=True)
    lines = ["path,label,patient,date"]
    for i in range(images):
        pixels = rng.integers(0, 255, size=(8, 8, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / "img" / f"{i}.png")
        day = pd.Timestamp("2024-01-01") + pd.Timedelta(days=(i * 7) % images)
        lines.append(f"img/{i}.png,{'ab'[i % 2]},p{i % patients},{day:%Y-%m-%d}")
    path = folder / "manifest.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def image_data(path: Path, **split):
    from mlcycle.data.classification import ImageClassificationData

    data = ImageClassificationData(
        source="csv", manifest=str(path), image_size=8, index_cache=False, **split
    )
    data.index  # noqa: B018  (read and split now)
    return data


def test_image_split_and_folds_keep_a_patient_together(tmp_path):
    from mlcycle.images.selection.pool import build_image_pool

    data = image_data(manifest(tmp_path), group_column="patient")
    index = data.index
    split_of: dict[str, set[str]] = {}
    for sample, split in zip(index.samples, index.splits, strict=True):
        split_of.setdefault(sample.meta["patient"], set()).add(split)
    assert all(len(s) == 1 for s in split_of.values())
    assert {"train", "val"} <= set(index.splits)
    pool = build_image_pool(data, 3, seed=0, by_class=True)
    fold_of: dict[str, set[int]] = {}
    for position, fold in zip(pool.positions, pool.folds, strict=True):
        fold_of.setdefault(index.samples[position].meta["patient"], set()).add(int(fold))
    assert all(len(f) == 1 for f in fold_of.values()) and len(set(pool.folds.tolist())) == 3
    files = pool.write(tmp_path, 3)
    assert {r["split"] for r in read_rows(files[0])} <= {"train", "val", "test"}
    listed = read_rows(tmp_path / "folds.csv")  # each image's patient shown beside its fold
    assert len(listed) == len(pool) and set(fold_of) == {r["patient"] for r in listed}
    shown: dict[str, set[str]] = {}
    for r in listed:
        shown.setdefault(r["patient"], set()).add(r["fold"])
    assert all(len(f) == 1 for f in shown.values())


def test_image_time_split_and_folds_follow_the_dates(tmp_path):
    from mlcycle.images.selection.pool import build_image_pool

    data = image_data(manifest(tmp_path), time_column="date")
    index = data.index
    day = {p: pd.Timestamp(index.samples[p].meta["date"]) for p in range(len(index.samples))}
    train = [day[p] for p in index.positions["train"]]
    later = [day[p] for s in ("val", "test") for p in index.positions[s]]
    assert max(train) < min(later)  # the latest images validate and test
    pool = build_image_pool(data, 2, seed=0, by_class=True)
    by_path = {index.files[p][0][0]: day[p] for p in range(len(index.samples))}
    for file in pool.write(tmp_path, 2):
        rows = read_rows(file)
        fit = [by_path[r["path"]] for r in rows if r["split"] == "train"]
        held = [by_path[r["path"]] for r in rows if r["split"] == "val"]
        assert fit and held and max(fit) < min(held)
    listed = read_rows(tmp_path / "folds.csv")
    assert all(pd.Timestamp(r["date"]) == by_path[r["path"]] for r in listed)


def test_image_missing_group_column_is_one_line(tmp_path):
    with pytest.raises(UserError, match="data.group_column 'ward' is not a column"):
        image_data(manifest(tmp_path), group_column="ward")
