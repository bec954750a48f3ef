"""validate_data.py on generated images with planted faults: each is found, nothing on disk changes."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest
from conftest import run_train, tree_digest
from quality_helpers import KindQuality, near_copy, plant_faults, save, split_layout, texture

from mlcycle.commands.materialize_data import main as materialize
from mlcycle.commands.validate_data import main
from mlcycle.core.errors import UserError
from mlcycle.data.classification import ImageClassificationData
from mlcycle.data.detection import DetectionData
from mlcycle.data.segmentation import SegmentationData
from mlcycle.data.splits import draw
from mlcycle.quality.config import build_data
from mlcycle.quality.kinds import DATA_QUALITY, quality_of


def validate(root: Path, out: Path, *extra: str) -> dict:
    return main(
        ["--config", "configs/image_folder.yaml", f"--data.root={root}", "--out", str(out), *extra]
    )


@pytest.fixture(scope="module")
def faulty(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    root = split_layout(tmp_path_factory.mktemp("faulty") / "images")
    return root, plant_faults(root)


def names(entries: list[dict]) -> set[str]:
    return {Path(f["path"]).name for e in entries for f in e.get("files", [e])}


def test_every_planted_fault_is_found_and_nothing_on_disk_changes(faulty, tmp_path, capsys):
    root, planted = faulty
    before = tree_digest(root)
    report = validate(root, tmp_path / "report", "--max-imbalance", "4")
    assert tree_digest(root) == before
    found = report["findings"]
    assert names(found["unreadable"]) == {"corrupt.png"}
    assert names(found["truncated"]) == {"truncated.png"}
    assert names(found["zero_byte"]) == {"empty.png"}
    assert names(found["unsupported_mode"]) == {"lab.tif"}
    assert names(found["too_small"]) == {"tiny.png"}
    assert {tuple(sorted(names([g]))) for g in found["exact_duplicates"]} == {
        ("a_000.png", "dup.png"),
        ("a_002.png", "leak.png"),
        ("a_004.png", "mislabeled.png"),
    }
    near = {tuple(sorted(names([p]))) for p in found["near_duplicates"]}
    assert near == {("b_001.png", "near.png"), ("c_003.png", "leak_near.png")}
    leaks = {(p["kind"], tuple(sorted(names([p])))) for p in found["leakage"]}
    assert leaks == {("exact", ("a_002.png", "leak.png")), ("near", ("c_003.png", "leak_near.png"))}
    conflicts = found["label_conflicts"]
    assert len(conflicts) == 1 and {f["label"] for f in conflicts[0]["files"]} == {"a", "b"}
    dark = {(Path(o["path"]).name, o["measure"]) for o in found["outliers"]}
    assert ("dark.png", "brightness") in dark and ("tiny.png", "size") in dark
    assert found["small_classes"] == [{"class": "d", "count": 3}]
    assert found["class_imbalance"][0]["smallest"] == "d"
    # The files on disk agree with the counts, and the summary table is printed.
    saved = json.loads((tmp_path / "report" / "data_report.json").read_text())
    assert saved["counts"] == {k: len(v) for k, v in found.items()}
    out = capsys.readouterr().out
    assert "leakage" in out and "quarantined" in out
    assert f"train without them: --data.quarantine {tmp_path / 'report' / 'quarantine.csv'}" in out

    with (tmp_path / "report" / "quarantine.csv").open() as fh:
        listed = {r["path"]: r["reason"] for r in csv.DictReader(fh)}
    assert all(Path(p).is_absolute() for p in listed)  # found again from any working folder
    rows = {Path(p).relative_to(root).as_posix(): reason for p, reason in listed.items()}
    assert set(rows) == {
        "train/a/corrupt.png",
        "train/b/truncated.png",
        "train/c/empty.png",
        "train/b/lab.tif",
        "train/c/tiny.png",
        "train/a/dup.png",  # the first copy stays
        "train/a/a_002.png",  # the test copy stays sealed; the train copy goes
        "train/c/c_003.png",  # near leak: the train side goes
        "train/a/a_004.png",  # identical file under two labels: both go
        "train/b/mislabeled.png",
    }
    assert (
        rows["train/a/a_002.png"].startswith("exact_duplicate of")
        and "leakage" in rows["train/a/a_002.png"]
    )


def test_clean_data_gets_no_quarantine_hint(tmp_path, capsys):
    root = split_layout(tmp_path / "images")
    report = validate(root, tmp_path / "r")
    out = capsys.readouterr().out
    assert report["quarantined"] == 0 and "0 file(s) quarantined" in out
    assert "--data.quarantine" not in out and "fix or remove" not in out


def test_outliers_can_be_quarantined_too(faulty, tmp_path):
    root, _ = faulty
    report = validate(root, tmp_path / "r", "--quarantine-outliers")
    with (tmp_path / "r" / "quarantine.csv").open() as fh:
        held = {Path(r["path"]).name for r in csv.DictReader(fh)}
    assert "dark.png" in held and report["quarantine_outliers"]


def content_split(path: Path) -> str:
    u = draw(42, hashlib.sha256(path.read_bytes()).hexdigest())
    return "test" if u < 0.15 else "val" if u < 0.30 else "train"


def test_near_leak_across_content_hash_splits(tmp_path):
    """Identical copies share a content-hash split; a near copy may not, and is caught."""
    root = tmp_path / "flat"
    for k, c in enumerate(("a", "b")):
        for i in range(10):
            save(texture(100 * k + i), root / c / f"{c}_{i}.png")
    original = root / "a" / "a_0.png"
    for seed in range(50):  # a near copy that draws another split than the original
        copy = near_copy(original, root / "a" / "copy.png", shift=6, seed=seed)
        if content_split(copy) != content_split(original):
            break
    report = validate(root, tmp_path / "out", "--min-per-class", "2")
    leaks = report["findings"]["leakage"]
    assert [sorted(names([p])) for p in leaks] == [["a_0.png", "copy.png"]]
    assert leaks[0]["kind"] == "near" and len({f["split"] for f in leaks[0]["files"]}) == 2


@pytest.mark.slow
def test_training_leaves_quarantined_files_out(faulty, tmp_path):
    root, _ = faulty
    validate(root, tmp_path / "report")
    quarantine = tmp_path / "report" / "quarantine.csv"
    before = tree_digest(root)
    run = run_train(root, tmp_path / "run", f"--data.quarantine={quarantine}")
    assert tree_digest(root) == before
    with quarantine.open() as fh:
        held = {r["path"] for r in csv.DictReader(fh)}
    with (run / "data_manifest.csv").open() as fh:
        used = {str(Path(r["path"]).resolve()) for r in csv.DictReader(fh)}
    with (run / "skipped_files.csv").open() as fh:
        skipped = list(csv.DictReader(fh))
    assert used and not used & held
    assert skipped == []  # every unreadable file was quarantined before training saw it


def test_out_folder_inside_the_data_is_refused(faulty, capsys):
    root, _ = faulty
    before = tree_digest(root)
    with pytest.raises(SystemExit) as exit_info:
        validate(root, root / "train" / "reports")
    assert exit_info.value.code == 2
    assert "is inside the data folder" in capsys.readouterr().err
    assert tree_digest(root) == before


def test_configs_compose_and_dotted_overrides_as_train_py(tmp_path, capsys):
    """The same parser as train.py: configs compose, both override forms, train.py's errors."""
    extra = tmp_path / "more.yaml"
    extra.write_text("data:\n  init_args:\n    image_size: 24\n    val_fraction: 0.2\n")
    overrides = ["--data.root", str(tmp_path), "--data.init_args.val_fraction=0.3"]
    dm = build_data(["configs/image_folder.yaml", str(extra)], overrides)
    assert dm.image_size == (24, 24) and dm.hparams.val_fraction == 0.3
    assert dm.hparams.source == "folder" and dm.hparams.batch_size == 32
    assert build_data(["configs/image_folder.yaml"], {"image_size": [8, 12]}).image_size == (8, 12)
    with pytest.raises(
        UserError, match="unknown config key 'data.imagesize'; did you mean 'data.image_size'"
    ):
        build_data(["configs/image_folder.yaml"], {"imagesize": 3})
    with pytest.raises(UserError, match="nope.yaml"):
        build_data(["nope.yaml"], {})
    with pytest.raises(SystemExit) as exit_info:  # the script: one line, exit 2, no report
        main(
            [
                "--config",
                "configs/image_folder.yaml",
                f"--data.root={tmp_path}",
                "--data.imagesize=3",
                "--out",
                str(tmp_path / "r"),
            ]
        )
    assert exit_info.value.code == 2 and not (tmp_path / "r").exists()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did you mean 'data.image_size'" in err


def test_a_training_config_and_command_line_validate_as_they_are(faulty, tmp_path):
    """model, trainer and seed_everything (file or command line) are read and ignored."""
    root, _ = faulty
    report = validate(root, tmp_path / "r", "--model.init_args.lr=0.5", "--trainer.max_epochs=1")
    assert report["files"] > 0 and report["task"] == "classification"
    assert report["overrides"] == [f"--data.root={root}"]


@pytest.mark.parametrize("cls", [ImageClassificationData, SegmentationData, DetectionData])
def test_every_image_data_module_declares_a_kind_with_checks(cls):
    assert cls.data_kind in DATA_QUALITY and DATA_QUALITY.get(cls.data_kind).task == cls.data_kind


def test_a_plugin_kind_of_data_brings_its_own_checks(tmp_path, monkeypatch, capsys):
    """A data module of a kind mlcycle does not know is checked by the part registered under
    its data_kind; what the part does not support is refused in one line."""
    DATA_QUALITY.load()
    monkeypatch.setitem(DATA_QUALITY._items, "test_kind", KindQuality())
    data = ["--data.class_path=quality_helpers.KindData", "--data.root=x"]
    report = main([*data, "--out", str(tmp_path / "r")])
    assert report == {
        "kind": "test kind",
        "root": "x",
        "overrides": data,
        "out": str(tmp_path / "r"),
    }
    with pytest.raises(SystemExit) as exit_info:
        materialize([*data, "--out", str(tmp_path / "copy")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "this config's data is test kind (KindData)" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["--data.class_path=quality_helpers.NoKindData", "--out", str(tmp_path / "r2")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert "declares no data_kind" in err and "classification, detection" in err


def test_a_table_module_declares_the_table_kind():
    from mlcycle.tables import TabularData

    assert quality_of(TabularData(source="builtin", path="messy", target="churn")).task == "tabular"


def test_a_training_config_with_every_train_key_validates(tmp_path):
    """The config that trains (objective, run_dir, finder keys: train.py's own) also
    validates: the data tools read it and ignore what is not data."""
    from mlcycle.quality.config import data_parser, parse

    config = tmp_path / "config.yaml"
    config.write_text(
        "objective: {metric: val/f1, min: 0.9}\nrun_dir: runs/x\nckpt_path: last\n"
        "strict_learning: true\nfind_lr: apply\nfind_lr_steps: 50\nfind_batch_size: false\n"
        "find_batch_size_trials: null\n"
    )
    for configs in (["configs/quickstart.yaml"], ["configs/quickstart.yaml", str(config)]):
        cfg = parse(data_parser(), [a for c in configs for a in ("--config", c)])
        assert cfg.data.class_path == "mlcycle.data.ImageClassificationData"
