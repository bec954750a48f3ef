"""Intra-op threads from the free cores: the rule on given numbers, /proc/stat read from a
file, a real spinner measured, and train.py's --threads applied, recorded and printed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import run_train, train_args

from mlcycle.core.threads import (
    CpuSample,
    ThreadChoice,
    busy_cores,
    busy_count,
    cpu_sample,
    free_threads,
    other_work,
)

SPIN = "import time\nend = time.time() + 30\nwhile time.time() < end: pass\n"


@pytest.mark.parametrize(
    ("cores", "busy", "processes", "ceiling", "threads"),
    [
        (2, 0.0, 1, 0, 2),  # idle: every core
        (2, 1.0, 1, 0, 1),  # the case: another job on one of two cores
        (2, 0.3, 1, 0, 2),  # a light neighbour does not take a core
        (2, 0.5, 1, 0, 1),  # half a core counts as busy
        (2, 3.0, 1, 0, 1),  # oversubscribed: still one thread
        (8, 2.0, 2, 0, 3),  # DDP on the CPU: 6 free cores for 2 processes
        (8, 0.0, 3, 0, 2),
        (2, 0.0, 4, 0, 1),  # more processes than cores: one each
        (16, 0.0, 1, 8, 8),  # never more than PyTorch's default (physical cores, OMP_NUM_THREADS)
        (4, None, 1, 0, 4),  # nothing measurable: nothing counted busy
    ],
)
def test_threads_from_cores_and_busy(cores, busy, processes, ceiling, threads):
    assert free_threads(cores, busy, processes, ceiling) == threads


def test_busy_cores_subtracts_our_own_cpu_time():
    start = CpuSample(busy=1000, total=2000, own_s=5.0, at=100.0)
    # 1 s on 2 cores at 100 jiffies/s: 200 jiffies, 180 of them busy; we used 0.8 s ourselves
    end = CpuSample(busy=1180, total=2200, own_s=5.8, at=101.0)
    assert busy_cores(start, end, cores=2) == pytest.approx(1.0)
    light = CpuSample(busy=1010, total=2200, own_s=5.0, at=101.0)  # 10 of 200 jiffies
    assert busy_cores(start, light, cores=2) == pytest.approx(0.1)
    ours_only = CpuSample(busy=1100, total=2200, own_s=6.0, at=101.0)  # all of it ours
    assert busy_cores(start, ours_only, cores=2) == 0.0
    assert busy_count(0.49) == 0 and busy_count(0.5) == 1 and busy_count(None) == 0


def test_cpu_sample_reads_the_cores_we_may_run_on(tmp_path):
    ours = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    lines = ["cpu  9 9 9 9 9 9 9 9 0 0"]
    lines += [f"cpu{c} 10 0 5 80 5 0 0 0 0 0" for c in ours]
    lines += [f"cpu{max(ours) + 1} 1000 0 0 0 0 0 0 0 0 0", "intr 1 2 3"]  # not ours
    stat = tmp_path / "stat"
    stat.write_text("\n".join(lines) + "\n")
    sample = cpu_sample(str(stat))
    assert (sample.busy, sample.total) == (15 * len(ours), 100 * len(ours))
    assert cpu_sample(str(tmp_path / "missing")).total is None


@pytest.mark.skipif(not Path("/proc/stat").is_file(), reason="no /proc/stat on this OS")
def test_a_spinning_process_is_counted_busy():
    spinner = subprocess.Popen([sys.executable, "-c", SPIN])
    try:
        time.sleep(0.3)  # started and spinning
        assert other_work(cpu_sample(), cores=len(os.sched_getaffinity(0))) >= 0.5
    finally:
        spinner.kill()
        spinner.wait()


def test_the_choice_reads_as_one_line():
    assert ThreadChoice(1, 2, busy=1.1).line() == (
        "threads: 1 of 2 cores (about 1 busy with other work; --threads N to choose)"
    )
    assert ThreadChoice(2, 2, busy=0.1).line() == (
        "threads: 2 of 2 cores (none busy with other work; --threads N to choose)"
    )
    assert ThreadChoice(3, 8, processes=2, source="--threads 3").line() == (
        "threads: 3 per process x 2 processes of 8 cores (given by --threads 3)"
    )


def test_threads_applied_recorded_and_printed_first(image_folder, tmp_path, capsys):
    before = torch.get_num_threads()
    try:
        run = run_train(image_folder, tmp_path / "run", "--threads", "1")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    out = capsys.readouterr().out.splitlines()
    line = next(i for i, text in enumerate(out) if text.startswith("threads: "))
    assert line <= 2, out[:5]
    assert out[line].startswith("threads: 1 of ") and out[line].endswith("(given by --threads 1)")
    assert yaml.safe_load((run / "config.yaml").read_text())["threads"] == 1


def test_auto_is_recorded_as_a_number(image_folder, tmp_path, capsys):
    before = torch.get_num_threads()
    try:
        run = run_train(image_folder, tmp_path / "run", "--trainer.accelerator=cpu")
    finally:
        torch.set_num_threads(before)
    recorded = yaml.safe_load((run / "config.yaml").read_text())["threads"]
    assert isinstance(recorded, int) and recorded >= 1
    assert f"threads: {recorded} of " in capsys.readouterr().out


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("zero", "error: config key 'threads': expected one of 'auto' or an integer, got 'zero'"),
        ("0", "error: --threads 0: give a count of at least 1, or auto"),
    ],
)
def test_a_wrong_count_is_one_line(image_folder, tmp_path, capsys, value, expected):
    """In this process: train.py's exit code and one-line stderr as a script are
    test_startup.py's (its config errors)."""
    from mlcycle.commands.train import main

    with pytest.raises(SystemExit) as stopped:
        main(train_args(image_folder, tmp_path / "run", "--threads", value))
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [expected]
    assert not (tmp_path / "run").exists()
