"""The GPU defaults (precision auto, cuDNN/TF32, num_workers auto) decided right on the CPU too."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import run_train

from mlcycle.commands.device import (
    available_cores,
    resolve_num_workers,
    resolve_precision,
    use_cuda_speedups,
)
from mlcycle.data import ImageClassificationData

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("accelerator", "cuda", "bf16", "expected"),
    [
        ("auto", True, True, "bf16-mixed"),
        ("gpu", True, True, "bf16-mixed"),
        ("cuda", True, True, "bf16-mixed"),
        ("auto", True, False, "16-mixed"),
        ("gpu", True, False, "16-mixed"),
        ("auto", False, False, "32"),
        ("cpu", True, True, "32"),  # a GPU present but the CPU asked for
        ("cpu", False, False, "32"),
        (None, False, False, "32"),
        ("mps", False, False, "32"),
    ],
)
def test_precision_auto(accelerator, cuda, bf16, expected):
    assert resolve_precision("auto", accelerator, cuda, bf16) == expected


@pytest.mark.parametrize("given", [32, "32", "32-true", "bf16-mixed", "16-mixed", 64, "bf16-true"])
def test_precision_given_is_kept(given):
    assert resolve_precision(given, "auto", True, True) == str(given)
    assert resolve_precision(given, "cpu", False, False) == str(given)


@pytest.mark.parametrize(
    ("accelerator", "cuda", "deterministic", "expected"),
    [
        ("auto", True, None, True),
        ("gpu", True, False, True),
        ("auto", True, True, False),
        ("auto", True, "warn", False),
        ("auto", False, None, False),
        ("cpu", True, None, False),
    ],
)
def test_cuda_speedups_only_on_cuda(accelerator, cuda, deterministic, expected):
    assert use_cuda_speedups(accelerator, cuda, deterministic) is expected


@pytest.mark.parametrize(
    ("workers", "batch", "cores", "expected"),
    [
        (0, 64, 16, 0),
        (3, 64, 1, 3),  # an int is kept
        ("auto", 64, 1, 0),
        ("auto", 64, 2, 1),
        ("auto", 8, 16, 1),
        ("auto", 64, 16, 4),
        ("auto", 256, 16, 8),
        ("auto", 256, 4, 3),
    ],
)
def test_num_workers_auto(workers, batch, cores, expected):
    assert resolve_num_workers(workers, batch, cores) == expected


def test_available_cores_is_positive():
    assert available_cores() >= 1


def test_data_module_resolves_num_workers(image_folder):
    data = ImageClassificationData(
        source="folder", root=str(image_folder), image_size=16, batch_size=8, num_workers="auto"
    )
    assert data.num_workers == resolve_num_workers("auto", 8, available_cores())
    assert ImageClassificationData(source="folder", root=str(image_folder)).num_workers == 0


def test_negative_num_workers_is_refused(image_folder):
    from mlcycle.errors import UserError

    with pytest.raises(UserError, match="num_workers"):
        ImageClassificationData(source="folder", root=str(image_folder), num_workers=-1)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU rule")
def test_precision_auto_trains_in_32_on_the_cpu(image_folder, tmp_path):
    run = run_train(image_folder, tmp_path / "run", "--trainer.precision=auto")
    assert json.loads((run / "metrics.json").read_text())["precision"] == "32-true"
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert str(config["trainer"]["precision"]) == "32"  # what ran, not 'auto'
    assert torch.backends.cudnn.benchmark is False  # nothing changed on the CPU


def test_num_workers_auto_from_the_command_line(image_folder, tmp_path):
    run = run_train(image_folder, tmp_path / "run", "--data.num_workers=auto")
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["data"]["init_args"]["num_workers"] == "auto"
    assert json.loads((run / "metrics.json").read_text())["status"] == "finished"


def test_bad_precision_is_one_line(image_folder, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_train(image_folder, tmp_path / "run", "--trainer.precision=fast")
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "trainer.precision" in err and "Traceback" not in err


def test_gpu_check_without_cuda_says_so_and_exits_0():
    if torch.cuda.is_available():
        pytest.skip("CUDA present: the check would run")
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/gpu_check.py")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1 and "CUDA" in lines[0]
