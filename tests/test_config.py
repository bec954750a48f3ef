"""Every config in configs/ parses; bad keys, types and files fail in one line with exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlcycle.commands.train import main

CONFIGS = sorted(
    str(p) for p in Path(__file__).resolve().parents[1].joinpath("configs").glob("*.yaml")
)


def print_config(capsys, *args: str) -> dict:
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--print_config"])
    assert exit_info.value.code in (0, None)
    return yaml.safe_load(capsys.readouterr().out)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: Path(p).name)
def test_every_config_parses(config, capsys):
    resolved = print_config(capsys, "--config", config)
    assert resolved["model"]["class_path"].startswith("mlcycle.tasks.")
    assert resolved["data"]["class_path"].startswith("mlcycle.data.")
    # Linked from the data, never written in a config.
    for key in ("num_classes", "in_channels", "class_names"):
        assert key not in resolved["model"]["init_args"]


TABLE_CONFIGS = sorted(
    str(p) for p in Path(__file__).resolve().parents[1].joinpath("configs", "tables").glob("*.yaml")
)


@pytest.mark.parametrize("config", TABLE_CONFIGS, ids=lambda p: Path(p).name)
def test_every_table_config_parses(config, capsys):
    # a model-only config (classic.yaml) composes with a table's
    alone = "data" in yaml.safe_load(Path(config).read_text())
    base = [] if alone else ["--config", "configs/tables/messy.yaml"]
    resolved = print_config(capsys, *base, "--config", config)
    assert resolved["model"]["class_path"].startswith("mlcycle.tables.")
    assert resolved["data"]["class_path"] == "mlcycle.tables.TabularData"


def test_configs_compose_and_dotted_keys_override(tmp_path, capsys):
    extra = tmp_path / "extra.yaml"
    extra.write_text("trainer:\n  max_epochs: 7\nmodel:\n  init_args:\n    lr: 0.5\n")
    resolved = print_config(
        capsys,
        "--config",
        "configs/quickstart.yaml",
        "--config",
        str(extra),
        "--model.weight_decay=0.25",
    )
    assert resolved["trainer"]["max_epochs"] == 7
    assert resolved["model"]["init_args"]["lr"] == 0.5
    assert resolved["model"]["init_args"]["weight_decay"] == 0.25
    assert resolved["data"]["init_args"]["source"] == "digits"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--model.lrr=3"], "unknown config key 'model.lrr'; did you mean 'model.lr'?"),
        (["--data.batchsize=3"], "did you mean 'data.batch_size'?"),
        (["--trainer.max_epoch=3"], "did you mean 'trainer.max_epochs'?"),
        # the usual words of other tools (messages.SYNONYMS), not difflib's closest spelling
        (["--epochs", "1"], "unknown config key 'epochs'; did you mean 'trainer.max_epochs'?"),
        (["--model.learning_rate=0.1"], "did you mean 'model.lr'?"),
        (["--lr=0.1"], "did you mean 'model.lr'?"),
        (["--batch_size=4"], "did you mean 'data.batch_size'?"),
        (["--data.batch=4"], "did you mean 'data.batch_size'?"),
        (["--img_size=32"], "did you mean 'data.image_size'?"),
        (["--data.img_size=32"], "did you mean 'data.image_size'?"),
        (
            ["--model.class_path=mlcycle.tasks.ClasificationTask"],
            "config key 'model': no class 'mlcycle.tasks.ClasificationTask'; "
            "did you mean 'mlcycle.tasks.ClassificationTask'?",
        ),
        (["--model=ClasificationTask"], "did you mean 'mlcycle.tasks.ClassificationTask'?"),
        (["--model.lr=abc"], "config key 'model.lr'"),
        (["--trainer.max_epochs=abc"], "config key 'trainer.max_epochs'"),
        (["--model.scheduler=cos"], "config key 'model.scheduler'"),
        (["--config", "missing.yaml"], "missing.yaml"),
        (
            ["--data.image_size", "abc"],
            "config key 'data.image_size': expected one of [int, list[int], null], got 'abc'",
        ),
    ],
)
def test_bad_config_is_one_line_exit_2(args, expected, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--config", "configs/quickstart.yaml", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert expected in err[0]


def test_bad_key_in_a_yaml_file(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  init_args:\n    val_fractoin: 0.2\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["--config", "configs/quickstart.yaml", "--config", str(bad)])
    assert exit_info.value.code == 2
    assert "did you mean 'data.val_fraction'?" in capsys.readouterr().err


def test_real_process_prints_no_traceback(tmp_path):
    """The script as a user runs it: exit code 2, one line, nothing written."""
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [
            sys.executable,
            "scripts/train.py",
            "--config",
            "configs/quickstart.yaml",
            "--model.arch=resnet17",
            f"--run_dir={run_dir}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith(
        "error: unknown model.arch 'resnet17' (classification architecture); did you mean 'resnet18'? closest: "
    )
    registered = ", ".join(__import__("mlcycle.models", fromlist=["list_models"]).list_models())
    assert line.endswith(f"registered: {registered}; and any timm model as timm/<name>")
    assert not run_dir.exists()
