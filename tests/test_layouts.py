"""Folder layouts people download (split folders, any case), links in the root, skipped rows."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest
from conftest import run_train, tree_digest, write_folder

from mlcycle.core.errors import UserError
from mlcycle.data import ImageClassificationData

CLASSES = ("stripes_h", "stripes_v", "blob")


def data(**kwargs) -> ImageClassificationData:
    kwargs.setdefault("source", "folder")
    kwargs.setdefault("image_size", 16)
    kwargs.setdefault("batch_size", 4)
    return ImageClassificationData(**kwargs)


def split_paths(dm: ImageClassificationData, split: str) -> set[Path]:
    return {dm.index.samples[p].path for p in dm.index.positions[split]}


def files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*.png")}


def test_train_and_test_folders_are_splits_not_classes(tmp_path, capsys):
    write_folder(tmp_path / "ds" / "train", per_class=20)
    write_folder(tmp_path / "ds" / "test", per_class=4)
    dm = data(root=str(tmp_path / "ds"))
    assert dm.class_names == sorted(CLASSES)
    counts = dm.describe()["split_counts"]
    assert counts["test"] == 12 and counts["train"] + counts["val"] == 60
    assert 3 <= counts["val"] <= 18  # 15% of train, drawn per class
    assert split_paths(dm, "test") == files(tmp_path / "ds" / "test")  # the sealed test set
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "layout: split folders train/ test/; val drawn from train (15%)"


def test_split_names_in_any_case_and_aliases(tmp_path):
    write_folder(tmp_path / "ds" / "Train", per_class=6)
    write_folder(tmp_path / "ds" / "VALID", per_class=3)
    write_folder(tmp_path / "ds" / "Testing", per_class=2)
    dm = data(root=str(tmp_path / "ds"))
    assert dm.describe()["split_counts"] == {"train": 18, "val": 9, "test": 6}
    assert split_paths(dm, "val") == files(tmp_path / "ds" / "VALID")
    assert split_paths(dm, "test") == files(tmp_path / "ds" / "Testing")


@pytest.mark.parametrize(("test_fraction", "expect_test"), [(0.15, True), (0, False)])
def test_missing_test_is_drawn_from_train_unless_zero(tmp_path, capsys, test_fraction, expect_test):
    write_folder(tmp_path / "ds" / "train", per_class=20)
    write_folder(tmp_path / "ds" / "dev", per_class=3)
    dm = data(root=str(tmp_path / "ds"), test_fraction=test_fraction)
    counts = dm.describe()["split_counts"]
    assert counts["val"] == 9 and split_paths(dm, "val") == files(tmp_path / "ds" / "dev")
    assert (counts["test"] > 0) == expect_test and counts["train"] + counts["test"] == 60
    line = capsys.readouterr().out.splitlines()[0]
    tail = "test drawn from train (15%)" if expect_test else "no test split (data.test_fraction=0)"
    assert line == f"layout: split folders train/ dev/; {tail}"


def test_drawing_from_train_is_content_stable(tmp_path):
    write_folder(tmp_path / "ds" / "train", per_class=20)
    write_folder(tmp_path / "ds" / "test", per_class=2)
    first = split_paths(data(root=str(tmp_path / "ds")), "val")
    extra = tmp_path / "ds" / "train" / "blob" / "zz_new.png"
    (tmp_path / "ds" / "train" / "blob" / "blob_000.png").rename(extra)
    again = split_paths(data(root=str(tmp_path / "ds")), "val")
    assert {p.name for p in first} - {"blob_000.png"} <= {p.name for p in again}


def test_a_mixed_root_stops_and_names_the_option(tmp_path):
    write_folder(tmp_path / "ds" / "train", per_class=6)
    write_folder(tmp_path / "ds", per_class=6, classes=("cats",))
    with pytest.raises(
        UserError,
        match=r"mixes split folders \(train/\) with other folders \(cats/\).*--data.layout=splits.*--data.layout=classes",
    ):
        _ = data(root=str(tmp_path / "ds")).num_classes
    as_splits = data(root=str(tmp_path / "ds"), layout="splits")
    assert as_splits.class_names == sorted(CLASSES)
    as_classes = data(root=str(tmp_path / "ds"), layout="classes", test_fraction=0)
    assert as_classes.class_names == ["cats", "train"]


def test_layout_value_is_checked(tmp_path):
    write_folder(tmp_path / "ds", per_class=6)
    with pytest.raises(UserError, match="data.layout='split' is not one of auto, splits, classes"):
        _ = data(root=str(tmp_path / "ds"), layout="split").num_classes


def test_class_coverage_warns_and_errors(tmp_path, capsys):
    write_folder(tmp_path / "ds" / "train", per_class=6)
    write_folder(tmp_path / "ds" / "test", per_class=2, classes=("blob", "stripes_h"))
    write_folder(tmp_path / "ds" / "val", per_class=2)
    dm = data(root=str(tmp_path / "ds"))
    assert dm.num_classes == 3
    assert (
        "warning: class 'stripes_v' has no image in the given test split" in capsys.readouterr().err
    )
    write_folder(tmp_path / "ds" / "val", per_class=2, classes=("ghost",))
    with pytest.raises(
        UserError, match=r"'ghost' \(val\) have images in val or test but none in train"
    ):
        _ = data(root=str(tmp_path / "ds")).num_classes


def test_links_in_the_root_are_followed_and_recorded(tmp_path):
    root = write_folder(tmp_path / "imgs", per_class=6, classes=("a", "b"))
    cache = write_folder(tmp_path / "cache", per_class=3, classes=("c",))
    target = cache / "c" / "c_000.png"
    (root / "a" / "cached.png").symlink_to(target)  # DVC's symlink cache, git-annex
    (root / "b" / "more").symlink_to(cache / "c", target_is_directory=True)
    dm = data(root=str(root), test_fraction=0)
    paths = {s.path for s in dm.index.samples}
    assert root / "a" / "cached.png" in paths and root / "b" / "more" / "c_001.png" in paths
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    dm.write_records(run_dir)
    with (run_dir / "data_manifest.csv").open() as fh:
        rows = {r["path"]: r for r in csv.DictReader(fh)}
    row = rows[str(root / "a" / "cached.png")]
    assert row["sha256"] == hashlib.sha256(target.read_bytes()).hexdigest()
    assert dm.index.root == root  # the link's place, not its target's


def test_bad_files_get_plain_reasons(tmp_path):
    root = write_folder(tmp_path / "imgs", per_class=6, classes=("a", "b"))
    (root / "a" / "notes.png").write_text("this is a README, not a picture\n")
    good = (root / "b" / "b_000.png").read_bytes()
    (root / "b" / "cut.png").write_bytes(good[:40])
    (root / "b" / "empty.png").write_bytes(b"")
    (root / "a" / "gone.png").symlink_to(tmp_path / "missing.png")
    dm = data(root=str(root), test_fraction=0)
    reasons = {Path(p).name: r for p, r in dm.index.skipped}
    assert reasons == {
        "notes.png": "not an image (content is text)",
        "cut.png": "truncated after 40 bytes",
        "empty.png": "zero bytes",
        "gone.png": f"broken link to '{tmp_path / 'missing.png'}'",
    }
    with pytest.raises(UserError, match=r"data.strict=true and 4 file\(s\)"):
        _ = data(root=str(root), test_fraction=0, strict=True).num_classes


def _manifest(tmp_path: Path) -> Path:
    root = write_folder(tmp_path / "imgs", per_class=8)
    rows = [f"imgs/{p.parent.name}/{p.name},{p.parent.name}" for p in sorted(root.rglob("*.png"))]
    rows.insert(3, "../secret/passwd.png,blob")
    rows.insert(5, f"{tmp_path.parent}/x.png,blob")
    rows.insert(7, ",blob")
    manifest = tmp_path / "labels.csv"
    manifest.write_text("path,label\n" + "\n".join(rows) + "\n")
    return manifest


def test_manifest_rows_leaving_the_root_are_skipped_with_their_line(tmp_path):
    manifest = _manifest(tmp_path)
    dm = data(source="csv", manifest=str(manifest), test_fraction=0)
    assert len(dm.index.samples) == 24
    assert dm.index.skipped == [
        ("../secret/passwd.png", f"line 5: path leaves the data root {tmp_path}"),
        (f"{tmp_path.parent}/x.png", f"line 7: path leaves the data root {tmp_path}"),
        ("labels.csv:9", "line 9: empty path"),
    ]


def without_threads(out: str) -> str:
    """train.py's output after its first line, the threads it chose (which depend on the
    machine's load: tests/test_threads.py checks that line)."""
    first, _, rest = out.partition("\n")
    assert first.startswith("threads: "), first
    return rest


def test_training_goes_on_past_skipped_rows_and_strict_stops(tmp_path, capsys):
    manifest = _manifest(tmp_path)
    before = tree_digest(tmp_path / "imgs")
    args = ["--config", "configs/image_csv.yaml", f"--data.manifest={manifest}", "--data.root=null"]
    args += ["--trainer.max_epochs=1", "--model.arch=small_cnn", "--data.image_size=16"]
    run = run_train(tmp_path / "unused", tmp_path / "run", *args, "--data.test_fraction=0")
    out = without_threads(capsys.readouterr().out)
    assert out.startswith("layout: CSV manifest labels.csv; splits drawn (val 15%, no test split)")
    assert "skipped 3 " in out
    with (run / "skipped_files.csv").open() as fh:
        assert [r["reason"][:7] for r in csv.DictReader(fh)] == ["line 5:", "line 7:", "line 9:"]
    assert json.loads((run / "data.json").read_text())["skipped_files"] == 3
    with pytest.raises(SystemExit) as stop:
        run_train(tmp_path / "unused", tmp_path / "run2", *args, "--data.strict=true")
    assert stop.value.code == 2
    assert "data.strict=true and 3 file(s)" in capsys.readouterr().err
    assert not (tmp_path / "run2").exists() and tree_digest(tmp_path / "imgs") == before


def test_training_on_split_folders_keeps_the_given_test_set(tmp_path, capsys):
    write_folder(tmp_path / "ds" / "train", per_class=10)
    write_folder(tmp_path / "ds" / "test", per_class=3)
    run = run_train(tmp_path / "ds", tmp_path / "run")
    out = without_threads(capsys.readouterr().out)
    assert out.startswith("layout: split folders train/ test/; val drawn")
    assert json.loads((run / "data.json").read_text())["class_names"] == sorted(CLASSES)
    with (run / "splits.csv").open() as fh:
        test = {Path(r["path"]) for r in csv.DictReader(fh) if r["split"] == "test"}
    assert test == files(tmp_path / "ds" / "test")


def test_quality_tools_read_split_folders_as_splits(tmp_path, capsys):
    from mlcycle.commands.materialize_data import main as materialize
    from mlcycle.commands.validate_data import main as validate
    from mlcycle.quality.eda.analysis import analyse

    write_folder(tmp_path / "ds" / "train", per_class=10)
    write_folder(tmp_path / "ds" / "Test", per_class=3)
    config = ["--config", "configs/image_folder.yaml", f"--data.root={tmp_path / 'ds'}"]
    report = validate([*config, "--out", str(tmp_path / "report")])
    assert sorted(report["class_counts"]) == sorted(CLASSES)
    assert report["split_counts"]["test"] == 9
    layout = "layout: split folders train/ Test/; val drawn from train (15%)"
    assert capsys.readouterr().out.startswith(layout)
    eda = analyse(["configs/image_folder.yaml"], {"root": str(tmp_path / "ds")})
    assert sorted(eda.all_counts["test"]) == sorted(CLASSES)
    assert all(it.split != "test" for it in eda.items)  # the sealed test set stays unread
    record = materialize([*config, "--out", str(tmp_path / "copy")])
    assert record["files"] == 39
    with (tmp_path / "copy" / "manifest.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    tested = {r["source_path"] for r in rows if r["split"] == "test"}
    assert tested == {
        p.relative_to(tmp_path / "ds").as_posix() for p in files(tmp_path / "ds" / "Test")
    }
    assert {r["label"] for r in rows} == set(CLASSES)
    with pytest.raises(SystemExit):
        write_folder(tmp_path / "ds", per_class=2, classes=("extra",))
        validate([*config, "--out", str(tmp_path / "report2")])
    assert "--data.layout=splits" in capsys.readouterr().err


def test_an_unlabeled_test_folder_is_listed_not_used(tmp_path, capsys):
    write_folder(tmp_path / "ds" / "train", per_class=20)
    (tmp_path / "ds" / "test").mkdir()
    for i, path in enumerate(sorted((tmp_path / "ds" / "train" / "blob").glob("*.png"))[:4]):
        (tmp_path / "ds" / "test" / f"{i}.png").write_bytes(path.read_bytes())
    dm = data(root=str(tmp_path / "ds"))
    assert dm.class_names == sorted(CLASSES)
    assert dm.describe()["split_counts"]["test"] > 0  # drawn from train instead
    assert not split_paths(dm, "test") & files(tmp_path / "ds" / "test")
    assert [r for _, r in dm.index.skipped] == ["unlabeled: test/ has no class folders"] * 4
    out = capsys.readouterr().out.splitlines()[0]
    assert out == (
        "layout: split folders train/; test/ holds 4 unlabeled images, not used; "
        "val drawn from train (15%); test drawn from train (15%)"
    )
