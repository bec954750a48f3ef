"""``mlcycle <command> [args]`` (and ``python -m mlcycle``): the one command runs each command as
its ``scripts/<name>.py`` does; real processes, as a user types them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
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
        *("train", "evaluate", "export", "predict", "validate", "eda", "materialize"),
        *("compare", "tune", "ensemble", "serve", "monitor", "retrain", "report"),
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


def test_command_errors_are_the_scripts(mlcycle):
    ours = run(mlcycle, "serve", "--no-such-option")
    theirs = run(sys.executable, "scripts/serve.py", "--no-such-option")
    assert ours.returncode == theirs.returncode == 2
    assert ours.stderr == theirs.stderr
    assert len(ours.stderr.splitlines()) == 1


def test_python_m_mlcycle():
    proc = run(sys.executable, "-m", "mlcycle", "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: mlcycle <command>")
    proc = run(sys.executable, "-m", "mlcycle", "trian")
    assert proc.returncode == 2
    assert "did you mean 'train'?" in proc.stderr


def test_completion_bash_names_the_commands(mlcycle):
    proc = run(mlcycle, "completion", "bash")
    assert proc.returncode == 0, proc.stderr
    assert "complete -o filenames -F _mlcycle mlcycle" in proc.stdout
    assert all(name in proc.stdout for name, _, _ in COMMANDS)


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
