"""train.py answers --help and config errors from the start-up cache, without importing
Lightning, and exactly as the full parser would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlcycle.commands.train import main
from mlcycle.training import cache, precheck
from mlcycle.training.fit import fit

ROOT = Path(__file__).resolve().parents[1]
QUICK = "configs/quickstart.yaml"
# The script as a user runs it; the last line says whether Lightning was imported.
PROBE = """import runpy, sys
sys.argv = ["scripts/train.py", *sys.argv[1:]]
try:
    runpy.run_path("scripts/train.py", run_name="__main__")
finally:
    print("lightning imported:", "lightning" in sys.modules)
"""


def train_py(cache_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLCYCLE_CACHE_DIR": str(cache_dir), "COLUMNS": "100"}
    return subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env=env,
    )


def warm_train_py(cache_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """``train_py`` on a written cache. A source file edited since it was written (another
    checkout's work in progress) makes it stale, as it should: the retry finds it rebuilt."""
    for _ in range(3):
        proc = train_py(cache_dir, *args)
        if proc.stdout.endswith("lightning imported: False\n"):
            break
    return proc


@pytest.fixture(scope="module")
def cold_help(tmp_path_factory):
    """``--help`` on a stale cache: the full parser answers and the cache is rebuilt."""
    folder = tmp_path_factory.mktemp("startup_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLCYCLE_CACHE_DIR", str(folder))
        stale = cache.cache_file()
    stale.write_text(json.dumps({"stamp": "an older install", "help": {}, "schema": {}}))
    return folder, stale, train_py(folder, "--help")


def test_help_names_the_sections_and_rebuilds_a_stale_cache(cold_help):
    folder, stale, proc = cold_help
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: train.py")
    for key in ("--config", "--trainer.max_epochs", "--model", "--data", "--objective"):
        assert key in proc.stdout
    assert proc.stdout.splitlines()[-1] == "lightning imported: True"
    rebuilt = json.loads(stale.read_text())
    assert rebuilt["stamp"] != "an older install"
    assert list(rebuilt["help"].values()) == [proc.stdout.rsplit("lightning imported", 1)[0]]
    assert "mlcycle.tasks.ClassificationTask" in rebuilt["schema"]["classes"]["model"]


def test_help_from_the_cache_is_the_same_text_without_lightning(cold_help):
    folder, _, first = cold_help
    again = warm_train_py(folder, "--help")
    assert again.returncode == 0
    assert again.stdout.splitlines()[-1] == "lightning imported: False"
    assert again.stdout.splitlines()[:-1] == first.stdout.splitlines()[:-1]


@pytest.mark.parametrize(
    ("arg", "error"),
    [
        (
            "--model.lrr=0.1",
            "unknown config key 'model.lrr'; did you mean 'model.lr'? (--help lists every key)",
        ),
        (
            "--trainer.max_epochs=abc",
            "config key 'trainer.max_epochs': expected an integer or null, got 'abc'",
        ),
        (
            "--epochs=1",
            "unknown config key 'epochs'; did you mean 'trainer.max_epochs'? (--help lists every key)",
        ),
    ],
)
def test_config_error_is_one_line_exit_2_without_lightning(cold_help, arg, error):
    folder, _, _ = cold_help
    proc = warm_train_py(folder, "--config", QUICK, arg)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"error: {error}"]
    assert proc.stdout.splitlines() == ["lightning imported: False"]


def test_missing_config_file_needs_no_cache(tmp_path):
    proc = train_py(tmp_path / "empty_cache", "--config", "configs/nothere.yaml")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"error: config key 'config': File does not exist: '{ROOT / 'configs/nothere.yaml'}'"
    ]
    assert proc.stdout.splitlines() == ["lightning imported: False"]


def test_yaml_syntax_error_names_the_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MLCYCLE_CACHE_DIR", str(tmp_path / "cache"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer: [\n  max_epochs: 3\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["--config", QUICK, "--config", str(bad)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: Problems parsing config: ")
    assert f'in "{bad}", line 3, column 1' in err[0]


@pytest.fixture(scope="module")
def schema_cache(tmp_path_factory):
    """A cache folder whose key schema the full parser wrote (a --print_config run)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLCYCLE_CACHE_DIR", str(tmp_path_factory.mktemp("schema_cache")))
        with pytest.raises(SystemExit):
            fit(["--config", QUICK, "--print_config"])
        yield


def write(folder: Path, text: str) -> str:
    path = folder / f"extra{len(list(folder.iterdir()))}.yaml"
    path.write_text(text)
    return str(path)


# (config-file texts, command-line arguments): each is one mistake (or several, where which one
# is named matters).
MISTAKES = [
    ([], ["--model.lrr=0.1"]),
    ([], ["--model.init_args.lrr=0.1"]),
    ([], ["--data.batchsize=3"]),
    ([], ["--trainer.max_epoch=3"]),
    ([], ["--trainer.foo.bar=1"]),
    ([], ["--objective.mni=0.9"]),
    ([], ["--modle.lr=1"]),
    ([], ["--foo=1", "--model.lrr=1"]),
    ([], ["--epochs=1"]),  # a synonym (messages.SYNONYMS)
    ([], ["--model.learning_rate=0.1"]),
    ([], ["--data.img_size=32"]),
    (["trainer:\n  epochs: 3\n"], []),
    (["modle:\n  init_args:\n    lr: 0.1\nzzz: 1\n"], []),
    (["trainer:\n  max_epoch: 3\n"], []),
    (["trainer:\n  max_epoch: 3\n  foo: {a: 1}\n"], []),
    (["model:\n  lrr: 0.1\n"], []),
    (["data:\n  init_args:\n    val_fractoin: 0.2\n"], []),
    (["objective:\n  metric: val/f1\n  mni: 0.9\n"], []),
    (["zzz: 1\n"], ["--trainer.max_epoch=3"]),
    (["model:\n  class_path: mlcycle.tasks.segmentation.SegmentationTask\n"], ["--model.dice=1"]),
    # A word where a number, a boolean or one of a fixed set of values belongs.
    ([], ["--trainer.max_epochs=abc"]),
    ([], ["--model.lr=fast"]),
    ([], ["--model.init_args.scheduler=cosinee"]),
    ([], ["--data.batch_size=big"]),
    ([], ["--trainer.precision=bf17-mixed"]),
    ([], ["--trainer.deterministic=maybe"]),
    ([], ["--objective.min=abc"]),
    ([], ["--seed_everything=abc"]),
    (["trainer:\n  max_epochs: abc\n"], []),
    (["model:\n  init_args:\n    optimizer: AdamW\n    lr: fast\n"], []),
    (["model:\n  class_path: mlcycle.tasks.segmentation.SegmentationTask\n"], ["--model.lr=x"]),
    # The hand-written checks before the rebuilt parser left these to the full parser.
    ([], ["--model.label_smoothing=none"]),  # a word YAML reads as null
    ([], ["--model.lr=fast", "--trainer.max_epochs=abc"]),  # two wrong values: the first named
    ([], ["--model.lr=fast", "--model.lrr=1"]),  # a wrong value and an unknown key
    ([], ["--model.lr=fast", "--model.lr=0.1"]),  # replaced (the full parser still refuses it)
    ([], ["--config", "{trainer: {max_epoch: 1}}"]),  # an inline config
    ([], ["--model", "mlcycle.tasks.ClassificationTask", "--model.lrr=1"]),  # a class named
]


@pytest.mark.parametrize(("texts", "args"), MISTAKES)
def test_checks_before_lightning_word_errors_as_the_full_parser(
    texts, args, schema_cache, tmp_path, capsys
):
    argv = ["--config", QUICK]
    for text in texts:
        argv += ["--config", write(tmp_path, text)]
    argv += args
    # The full parser first (it adds a class named by its class_path to the schema).
    with pytest.raises(SystemExit) as exit_info:
        fit([*argv, "--print_config"])
    assert exit_info.value.code == 2
    full = capsys.readouterr().err.strip().splitlines()[-1]
    early = precheck.check(argv, cache.load()["schema"])
    assert early is not None, full
    assert f"error: {early}" == full


@pytest.mark.parametrize(
    "args",
    [
        ["--data.image_size=abc"],  # a type beyond int, float, bool, str, None and Literal
        ["--model=ClassificationTask", "--model.lrr=1"],  # a short class name
        ["--model=mlcycle.tasks.detection.DetectionTask", "--model.lrr=1"],  # a class not cached
        ["--trainer.callbacks+=EarlyStoping"],  # an argument of a type the rebuilt parser skips
        ["--trainer.callbacks.patiense=2"],  # a key inside one
        ["--model.dict_kwargs.x=1"],  # the class syntax
        ["--model.class_path=mlcycle.tasks.ClasificationTask"],  # no such class: worded there
    ],
)
def test_what_needs_the_full_parser_is_left_to_it(args, schema_cache):
    assert precheck.check(["--config", QUICK, *args], cache.load()["schema"]) is None


@pytest.mark.parametrize(
    "args",
    [
        *[["--config", str(p)] for p in sorted((ROOT / "configs").glob("*.yaml"))],
        ["-c", QUICK, "--trainer.callbacks+=EarlyStopping", "--trainer.callbacks.patience=2"],
        ["--config", QUICK, "--model.num_classes=3", "--data.init_args.batch_size=3"],
        ["--config", QUICK, "--model", "mlcycle.tasks.ClassificationTask", "--model.lr", "-1"],
        ["--config", QUICK, "--objective.min=0.9", "--strict_learning", "--find_lr", "apply"],
        ["--config", QUICK, "--trainer", "other.yaml", "--trainer.whatever=1"],
    ],
)
def test_valid_arguments_pass_the_early_checks(args, schema_cache):
    assert precheck.check(args, cache.load()["schema"]) is None


def test_print_config_remembers_the_classes_its_config_names(schema_cache, capsys):
    with pytest.raises(SystemExit):
        fit(["--config", "configs/segment_quickstart.yaml", "--print_config"])
    assert "class_path: mlcycle.data.segmentation.SegmentationData" in capsys.readouterr().out
    schema = cache.load()["schema"]
    assert "mlcycle.data.segmentation.SegmentationData" in schema["classes"]["data"]
    early = precheck.check(
        ["--config", "configs/segment_quickstart.yaml", "--data.val_fractoin=x"], schema
    )
    assert early.startswith("unknown config key 'data.val_fractoin'")


def test_a_stale_or_missing_cache_is_no_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MLCYCLE_CACHE_DIR", str(tmp_path))
    assert cache.load() == {}
    cache.update(schema={"dests": []})
    assert cache.load()["schema"] == {"dests": []}
    content = json.loads(cache.cache_file().read_text())
    cache.cache_file().write_text(json.dumps({**content, "stamp": "another install"}))
    assert cache.load() == {}
    # Without a schema only the files are checked: an unknown key goes on to the full parser;
    # so it does with a schema damaged by hand.
    assert precheck.check(["--config", QUICK, "--model.lrr=1"], None) is None
    assert precheck.check(["--config", QUICK, "--model.lrr=1"], {"dests": []}) is None
