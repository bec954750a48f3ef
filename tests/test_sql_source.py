"""The ``sql`` source against a real SQLite file: rows, extra columns, escapes, errors, training."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import pytest
import yaml
from conftest import train_args, tree_digest, write_folder

from mlcycle.core.errors import UserError
from mlcycle.data import ImageClassificationData
from mlcycle.data.sql import sql_source

QUERY = "SELECT path, label, camera, exposure FROM images ORDER BY path"


def make_db(db: Path, root: Path, extra_rows: list[tuple] = ()) -> Path:
    """One row per image under ``root`` (``<class>/<file>``) plus ``extra_rows``."""
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE images (path TEXT, label TEXT, camera TEXT, exposure REAL)")
    rows = [
        (p.relative_to(root).as_posix(), p.parent.name, f"cam{i % 2}", i / 10)
        for i, p in enumerate(sorted(root.rglob("*.png")))
    ]
    con.executemany("INSERT INTO images VALUES (?, ?, ?, ?)", [*rows, *extra_rows])
    con.commit()
    con.close()
    return db


@pytest.fixture
def sql_data(tmp_path: Path) -> tuple[Path, Path]:
    root = write_folder(tmp_path / "images", per_class=8)
    return root, make_db(tmp_path / "labels.db", root)


def test_rows_become_samples_with_extra_columns_as_meta(sql_data):
    root, db = sql_data
    samples = sql_source(url=f"sqlite:///{db}", query=QUERY, root=str(root)).samples
    assert len(samples) == 24
    first = samples[0]
    assert first.path == root.resolve() / "blob" / "blob_000.png" and first.label == "blob"
    assert first.split is None and first.meta == {"camera": "cam0", "exposure": 0.0}
    dm = ImageClassificationData(
        source="sql", url=f"sqlite:///{db}", query=QUERY, root=str(root), image_size=16
    )
    assert dm.class_names == ["blob", "stripes_h", "stripes_v"]
    assert sum(len(p) for p in dm.index.positions.values()) == 24


def test_split_column_fixes_splits_and_absolute_paths_inside_root_are_accepted(tmp_path):
    root = write_folder(tmp_path / "images", per_class=4, classes=("a", "b"))
    db = tmp_path / "s.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (file TEXT, cls INTEGER, split TEXT)")
    files = sorted(root.rglob("*.png"))
    con.executemany(
        "INSERT INTO t VALUES (?, ?, ?)",
        [(str(p.resolve()), 0 if p.parent.name == "a" else 1, ["train", "train", "val", "test"][i % 4])
         for i, p in enumerate(files)],
    )  # fmt: skip
    con.commit()
    con.close()
    samples = sql_source(
        url=f"sqlite:///{db}",
        query="SELECT file, cls, split FROM t",
        root=str(root),
        path_column="file",
        label_column="cls",
    ).samples
    assert {s.label for s in samples} == {"0", "1"}
    assert [s.split for s in samples[:4]] == ["train", "train", "val", "test"]
    assert all(s.meta is None for s in samples)


def test_missing_columns_are_named(sql_data):
    root, db = sql_data
    with pytest.raises(UserError, match=r"no 'label' column \(columns: path, camera\)"):
        sql_source(url=f"sqlite:///{db}", query="SELECT path, camera FROM images", root=str(root))
    with pytest.raises(UserError, match="no 'path' or 'label' column"):
        sql_source(url=f"sqlite:///{db}", query="SELECT camera FROM images", root=str(root))


@pytest.mark.parametrize("kind", ["dotdot", "absolute"])
def test_rows_leaving_the_root_are_skipped_with_the_row(tmp_path, kind):
    root = write_folder(tmp_path / "images", per_class=3, classes=("a", "b"))
    outside = write_folder(tmp_path / "elsewhere", per_class=1, classes=("x",)) / "x" / "x_000.png"
    bad = "../elsewhere/x/x_000.png" if kind == "dotdot" else str(outside)
    db = make_db(tmp_path / "labels.db", root, [(bad, "a", "cam9", 1.0)])
    found = sql_source(
        url=f"sqlite:///{db}", query="SELECT * FROM images ORDER BY rowid", root=str(root)
    )
    assert len(found.samples) == 6  # the run goes on with the rows inside the root
    assert found.skipped == [(bad, f"row 7: path leaves the data root {root}")]


def test_a_link_inside_the_root_is_followed(tmp_path):
    root = write_folder(tmp_path / "images", per_class=3, classes=("a", "b"))
    outside = write_folder(tmp_path / "elsewhere", per_class=1, classes=("x",)) / "x" / "x_000.png"
    (root / "a" / "link.png").symlink_to(outside)
    db = make_db(tmp_path / "labels.db", root, [])
    found = sql_source(url=f"sqlite:///{db}", query="SELECT * FROM images", root=str(root))
    assert root / "a" / "link.png" in [s.path for s in found.samples] and not found.skipped


@pytest.mark.parametrize(
    ("url", "query", "message"),
    [
        ("sqlite:///{db}", "SELECT * FROM no_such_table", "data.query failed on .*no such table"),
        ("sqlite:///{db}", "SELEC path", "data.query failed on .*syntax error"),
        ("sqlite:///{tmp}/missing.db", "SELECT 1", "database file .* does not exist"),
        ("not a url", "SELECT 1", "is not a SQLAlchemy URL"),
        ("nodb://host/x", "SELECT 1", "install the database driver or fix the URL"),
        ("sqlite:///{db}", "DELETE FROM images", "attempt to write a readonly database"),
    ],
)
def test_database_errors_are_one_line_and_the_database_is_untouched(
    sql_data, tmp_path, url, query, message
):
    root, db = sql_data
    before = tree_digest(tmp_path)
    with pytest.raises(UserError, match=message) as err:
        sql_source(url=url.format(db=db, tmp=tmp_path), query=query, root=str(root))
    assert "\n" not in str(err.value)
    assert tree_digest(tmp_path) == before


def test_unset_options_are_named(sql_data):
    root, db = sql_data
    with pytest.raises(UserError, match="data.url is not set"):
        sql_source(query=QUERY, root=str(root))
    with pytest.raises(UserError, match="data.root is not set"):
        sql_source(url=f"sqlite:///{db}", query=QUERY)


def sql_train_args(root: Path, db: Path, run: Path, *extra: str) -> list[str]:
    args = train_args(root, run, f"--data.url=sqlite:///{db}", f"--data.query={QUERY}", *extra)
    return [("configs/image_sql.yaml" if a == "configs/image_folder.yaml" else a) for a in args]


@pytest.mark.slow
def test_trains_one_epoch_from_sqlite(sql_data, tmp_path):
    from mlcycle.commands.train import main

    root, db = sql_data
    before = tree_digest(root)
    run = main(sql_train_args(root, db, tmp_path / "run"))
    with (run / "data_manifest.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 24 and {r["source"] for r in rows} == {"sql"}
    assert (run / "metrics.json").is_file()
    assert tree_digest(root) == before


def test_train_script_prints_one_error_line_for_bad_sql(sql_data, tmp_path, capsys):
    from mlcycle.commands.train import main

    root, db = sql_data
    args = sql_train_args(root, db, tmp_path / "run", "--data.query=SELECT nope FROM images")
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: data.query failed on") and "no such column" in err[-1]
    assert not (tmp_path / "run").exists()


def test_a_query_with_colon_space_stays_a_string_for_train_and_validate(sql_data, tmp_path):
    from mlcycle.commands.train import main
    from mlcycle.commands.validate_data import main as validate

    root, db = sql_data
    query = "SELECT path, label FROM images WHERE camera != 'x: y' ORDER BY path"
    args = sql_train_args(root, db, tmp_path / "run", "--data.query", query)
    run = main([*args, "--trainer.limit_train_batches=1", "--trainer.limit_val_batches=1"])
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["data"]["init_args"]["query"] == query
    config = [
        "--config",
        "configs/image_sql.yaml",
        f"--data.root={root}",
        f"--data.url=sqlite:///{db}",
    ]
    report = validate([*config, f"--data.query={query}", "--out", str(tmp_path / "report")])
    assert report["files"] == 24
