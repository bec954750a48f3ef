"""``mlcycle <command> [args]`` (and ``python -m mlcycle``): the one command runs each command as
its ``scripts/<name>.py`` does; real processes, as a user types them."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import get_args

import pytest
import yaml
from export_helpers import PREDICT, ROOT, exported_run

from mlcycle.commands.cli import ALIASES, COMMANDS

MLCYCLE = shutil.which("mlcycle", path=str(Path(sys.executable).parent))


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)


@pytest.fixture(scope="module")
def mlcycle() -> str:
    if MLCYCLE is None:
        pytest.skip("the mlcycle console script is not installed (pip install -e .)")
    return MLCYCLE


def test_help_lists_every_command(mlcycle):
    for args in ([], ["--help"], ["-h"]):
        proc = run(mlcycle, *args)
        assert proc.returncode == 0, proc.stderr
        listed = [line.split()[0] for line in proc.stdout.splitlines() if line.startswith("  ")]
        assert all(name in listed for name, _, _ in COMMANDS), proc.stdout
    names = {name for name, _, _ in COMMANDS}
    assert names == {
        *("train", "evaluate", "export", "predict", "validate", "eda", "materialize", "optimize"),
        *("compare", "tune", "ensemble", "serve", "monitor", "retrain", "report"),
        *("learning-curve", "label-issues", "label-next"),
    }


def test_unknown_command_is_one_line_with_the_closest(mlcycle):
    proc = run(mlcycle, "trian")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == (
        "error: unknown command 'trian'; did you mean 'train'? (see mlcycle --help)\n"
    )


def test_version(mlcycle):
    from mlcycle import __version__

    assert run(mlcycle, "--version").stdout == f"mlcycle {__version__}\n"


def test_module_names_are_aliases():
    assert ALIASES["validate_data"] == ALIASES["validate-data"] == "validate"
    assert ALIASES["materialize_data"] == ALIASES["materialize-data"] == "materialize"
    assert "train" not in ALIASES


# the quick ones: train.py's help comes from the start-up cache, predict imports only edge
@pytest.mark.parametrize("command, script", [("train", "train"), ("predict", "predict")])
def test_command_help_is_the_scripts(mlcycle, command, script):
    ours = run(mlcycle, command, "--help")
    theirs = run(sys.executable, f"scripts/{script}.py", "--help")
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout
    assert "usage:" in ours.stdout


def test_command_errors_are_the_scripts(mlcycle, capsys):
    # predict: a script whose usage error answers at once (the others import Lightning first)
    ours = run(mlcycle, "predict", "--no-such-option")
    theirs = run(sys.executable, "scripts/predict.py", "--no-such-option")
    assert ours.returncode == theirs.returncode == 2
    assert ours.stderr == theirs.stderr
    assert len(ours.stderr.splitlines()) == 1
    from mlcycle.commands.serve import main  # serve's own, in this process: one line, exit 2

    with pytest.raises(SystemExit) as stopped:
        main(["--no-such-option"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "--no-such-option" in err[0], err


def test_python_m_mlcycle():
    proc = run(sys.executable, "-m", "mlcycle", "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: mlcycle <command>")
    proc = run(sys.executable, "-m", "mlcycle", "trian")
    assert proc.returncode == 2
    assert "did you mean 'train'?" in proc.stderr


@pytest.mark.slow  # it builds every parser (the data tools' import Lightning)
def test_completion_bash_names_the_commands_and_their_options(mlcycle):
    proc = run(mlcycle, "completion", "bash")
    assert proc.returncode == 0, proc.stderr
    assert all(name in proc.stdout for name, _, _ in COMMANDS)
    if importlib.util.find_spec("shtab") is None:
        assert "complete -o filenames -F _mlcycle mlcycle" in proc.stdout
        return
    lines = proc.stdout.splitlines()
    evaluate = next(line for line in lines if line.startswith("_shtab_mlcycle_evaluate_option_"))
    assert "--batch_size" in evaluate and "--config" in evaluate
    assert "'val test'" in proc.stdout  # --split's choices


def test_a_key_of_another_command_names_it(mlcycle, capsys):
    proc = run(mlcycle, "evaluate", "--run", "x", "--quantize", "int8")
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: --quantize is an option of mlcycle export, not of mlcycle evaluate\n"
    )
    from mlcycle.commands.cli import main  # in this process: evaluate's parser needs Lightning

    with pytest.raises(SystemExit):
        main(["evaluate", "--run", "x", "--bs", "8"])
    assert capsys.readouterr().err == (
        "error: unknown option '--bs'; did you mean '--batch_size'? (see mlcycle evaluate --help)\n"
    )


def test_either_spelling_and_print_config(mlcycle, tmp_path):
    config = tmp_path / "evaluate.yaml"
    config.write_text("run: runs/a\nsplit: test\n")
    proc = run(mlcycle, "evaluate", "--config", str(config), "--batch-size", "8", "--print_config")
    assert proc.returncode == 0, proc.stderr
    printed = yaml.safe_load(proc.stdout)
    expected = {"run": "runs/a", "split": "test", "checkpoint": "best", "batch_size": 8}
    assert {key: printed.get(key) for key in expected} == expected


def test_export_keys_are_export_options():
    """export's parser is written out (its --help needs no torch): the same names, defaults and
    choices as ExportOptions and the exporters."""
    from mlcycle.commands.export import parser
    from mlcycle.export.onnx_export import EXPORTERS
    from mlcycle.export.quantize import CALIBRATION_METHODS
    from mlcycle.export.run_export import FORMATS, ExportOptions

    defaults = parser().get_defaults()
    for option in fields(ExportOptions):
        if option.name != "run":
            assert defaults[option.name] == getattr(ExportOptions(run=""), option.name), option
    choices = {a.dest: get_args(getattr(a, "_typehint", None)) for a in parser()._actions}
    assert choices["exporter"] == EXPORTERS
    assert tuple(choices["calibration_method"]) == tuple(CALIBRATION_METHODS)
    assert choices["format"] == FORMATS


def test_retrain_registry_default_is_the_registry_s():
    from mlcycle.commands.retrain import parser
    from mlcycle.retrain.registry import DEFAULT_REGISTRY

    assert Path(parser().get_defaults()["registry"]) == DEFAULT_REGISTRY


def test_predict_equals_the_script(mlcycle, tmp_path_factory):
    run_dir, _, _ = exported_run(tmp_path_factory)
    model = run_dir / "export" / "model.onnx"
    rows = [line.split(",") for line in (run_dir / "splits.csv").read_text().splitlines()[1:]]
    images = [path for path, _, split in rows if split == "val"][:3]
    ours = run(mlcycle, "predict", str(model), *images)
    theirs = run(sys.executable, str(PREDICT), str(model), *images)
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert ours.stdout == theirs.stdout
    assert len(ours.stdout.splitlines()) == len(images)
    # predict's own exit code comes through: a missing image is 1 or 2, as the script says
    ours = run(mlcycle, "predict", str(model), str(run_dir / "nothere.png"))
    theirs = run(sys.executable, str(PREDICT), str(model), str(run_dir / "nothere.png"))
    assert ours.returncode == theirs.returncode != 0
