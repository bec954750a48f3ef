"""Data-parallel training (configs/ddp.yaml) on two CPU processes with gloo.

train.py runs in a subprocess: Lightning's ``ddp`` strategy starts the script again for rank 1,
which a pytest process cannot be. Starting one takes long, so one 2-process run
(:func:`ddp_run`) serves every test here that only reads a finished run.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import run_train, train_args, write_folder

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
# Nothing random in training: no augmentation, no dropout. With both, each process draws its
# own masks and flips for its half of the batch, and the two runs part ways from the first step.
DETERMINISTIC = (
    "--data.train_transforms=[]",
    "--model.arch_options={dropout: 0}",
    "--trainer.max_epochs=2",
)


def ddp_train(data: Path, run_dir: Path | None, *extra: str, cwd: Path | None = None) -> subprocess.CompletedProcess:  # fmt: skip
    """train.py on 2 CPU processes; ``run_dir`` None: the default one (runs/ddp/<time> in
    ``cwd``), which both processes must agree on."""
    args = train_args(data, run_dir or Path("unused"), *DETERMINISTIC, *extra)
    if run_dir is None:
        args.remove("--run_dir=unused")
    args[1] = str(ROOT / args[1])  # the task config, from the repository
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts/train.py"),
            *args,
            f"--config={ROOT / 'configs/ddp.yaml'}",
            "--trainer.devices=2",
            "--trainer.accelerator=cpu",
            "--trainer.sync_batchnorm=false",  # SyncBatchNorm needs CUDA
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd or run_dir.parent,
        env={**os.environ, "MLCYCLE_RUN_DIR": ""},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def history(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "history.csv").open() as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def even_data(tmp_path_factory) -> Path:
    """12 images per class: 24 train and 6 val images (and 6 test), both even, so the
    DistributedSampler splits each in two equal halves and pads nothing."""
    return write_folder(tmp_path_factory.mktemp("even") / "images", per_class=12)


@pytest.fixture(scope="module")
def ddp_run(even_data, tmp_path_factory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """One finished 2-process run: 2 epochs of one batch (32 images per process), no
    --run_dir (the default one, under ``runs/`` of the folder it ran in). The folder it ran in,
    its run directory and the finished process."""
    cwd = tmp_path_factory.mktemp("ddp")
    proc = ddp_train(even_data, None, "--data.batch_size=32", cwd=cwd)
    made = list((cwd / "runs").rglob("metrics.json"))
    assert len(made) == 1, made
    return cwd, made[0].parent, proc


def test_two_processes_write_one_run_in_the_default_run_directory(ddp_run):
    """Lightning relaunches the script for rank 1; both ranks must agree on the run directory."""
    cwd, run_dir, proc = ddp_run
    made = [p for p in (cwd / "runs" / "ddp").iterdir()]
    assert made == [run_dir], made
    assert sorted(p.name for p in cwd.iterdir()) == ["runs"]
    assert json.loads((run_dir / "metrics.json").read_text())["epochs"] == 2
    assert proc.stdout.strip().splitlines()[-1] == f"run directory: {run_dir.relative_to(cwd)}"


def test_ddp_on_the_cpu_divides_the_cores(ddp_run):
    _, run_dir, done = ddp_run
    lines = [line for line in done.stdout.splitlines() if line.startswith("threads: ")]
    assert len(lines) == 1 and " per process x 2 processes of " in lines[0], done.stdout[:2000]
    recorded = yaml.safe_load((run_dir / "config.yaml").read_text())["threads"]
    assert lines[0].startswith(f"threads: {recorded} per process")
    assert recorded == 1 or recorded * 2 <= len(os.sched_getaffinity(0))


def test_two_processes_match_one_on_the_same_global_batch(even_data, ddp_run, tmp_path):
    """Two processes with half the batch each give (nearly) the single process's numbers.

    What is the same by construction:
    * one batch per epoch (64 >= 24 train images; 32 per process), so which images meet in a
      batch does not depend on the order (the DistributedSampler and the single process's
      RandomSampler shuffle differently);
    * equal halves: DDP averages the two processes' mean gradients, which is the mean over the
      whole batch; the val loss (a mean of per-batch means) is the same mean; val/f1 and
      val/acc come from torchmetrics' states summed over both processes.
    What is not, and why the numbers are not equal: batch norm. On the GPU configs/ddp.yaml
    syncs it; SyncBatchNorm needs CUDA, so here each process normalizes its 12 images with
    their own statistics (the single process with all 24's), and DDP keeps rank 0's running
    statistics for validation. Measured: train/loss 0.193 vs 0.205, val/loss 1.0839 vs 1.0841,
    val/f1 and val/acc equal. The bounds leave room for that and fail on a real fault (a
    process validating only half the images, a rank's gradients not averaged, a padded or
    doubled shard), each of which moves the metrics by far more.
    """
    single = run_train(even_data, tmp_path / "single", *DETERMINISTIC, "--data.batch_size=64")
    _, ddp, _ = ddp_run

    one, two = history(single), history(ddp)
    assert [r["epoch"] for r in one] == [r["epoch"] for r in two] == ["1", "2"]
    a, b = ({k: float(v) for k, v in h[-1].items()} for h in (one, two))
    assert b["val/loss"] == pytest.approx(a["val/loss"], rel=0.02)
    assert b["train/loss"] == pytest.approx(a["train/loss"], rel=0.15)
    # 6 val images: one changed prediction would move accuracy by 1/6; none may.
    assert b["val/acc"] == pytest.approx(a["val/acc"], abs=1e-6)
    assert b["val/f1"] == pytest.approx(a["val/f1"], abs=1e-6)
    first, second = (json.loads((d / "metrics.json").read_text()) for d in (single, ddp))
    assert second["val/f1"] == pytest.approx(first["val/f1"], abs=1e-6)
    assert second["epochs"] == 2 and second["status"] == "finished"


def test_resume_under_ddp_continues_the_same_run(even_data, ddp_run, tmp_path):
    """The shared 2-epoch run, copied, resumed under DDP for a third epoch."""
    run_dir = tmp_path / "run"
    shutil.copytree(ddp_run[1], run_dir)
    (run_dir / "metrics.json").unlink()  # so the one written next is the resumed run's

    proc = ddp_train(even_data, run_dir, "--data.batch_size=32", "--trainer.max_epochs=3", "--ckpt_path=last")  # fmt: skip
    assert [r["epoch"] for r in history(run_dir)] == ["1", "2", "3"]
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["epochs"] == 3 and record["resumed_from"] == "last"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no other run
    # rank 0 alone writes the record and reports: one summary line, one run directory line.
    lines = proc.stdout.strip().splitlines()
    assert sum(line.startswith("run directory:") for line in lines) == 1, proc.stdout
    assert lines[-1] == f"run directory: {run_dir}"


def test_sync_batchnorm_without_cuda_is_refused_in_one_line(image_folder, tmp_path, capsys):
    from conftest import train_args

    from mlcycle.commands.train import main

    with pytest.raises(SystemExit) as exit_info:
        main(
            train_args(
                image_folder,
                tmp_path / "run",
                "--trainer.sync_batchnorm=true",
                "--trainer.accelerator=cpu",
            )
        )
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error:") and "sync_batchnorm=false" in err
    assert not (tmp_path / "run").exists()
