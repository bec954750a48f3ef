"""The GPU defaults (precision auto, cuDNN/TF32, num_workers auto) decided right on the CPU too,
and the model options channels_last and compile run on the CPU."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import run_train
from export_helpers import export_run, train_run
from lightning.pytorch import Trainer
from lightning.pytorch.trainer.states import TrainerFn

from mlcycle.commands.evaluate import main as evaluate
from mlcycle.core.device import (
    available_cores,
    resolve_num_workers,
    resolve_precision,
    use_cuda_speedups,
)
from mlcycle.core.errors import UserError
from mlcycle.data import ImageClassificationData
from mlcycle.run.loader import Run
from mlcycle.tasks.classification import ClassificationTask
from mlcycle.tasks.common import channels_last_batch, compile_options
from mlcycle.tasks.detection import DetectionTask

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
    from mlcycle.core.errors import UserError

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


# --- model.channels_last and model.compile ----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (False, None),
        (True, {}),
        ("max-autotune", {"mode": "max-autotune"}),
        ("reduce-overhead", {"mode": "reduce-overhead"}),
        ("aot_eager", {"backend": "aot_eager"}),
    ],
)
def test_compile_values(value, expected):
    assert compile_options(value) == expected


def test_bad_compile_value_is_one_line():
    with pytest.raises(UserError, match=r"model\.compile='fast' is not true, false or one of") as e:
        ClassificationTask(num_classes=3, in_channels=1, compile="fast")
    assert "\n" not in str(e.value)


def test_detection_refuses_compile_but_takes_channels_last():
    with pytest.raises(UserError, match=r"model\.compile=True is not supported by the detection"):
        DetectionTask(num_classes=2, in_channels=3, compile=True)
    assert DetectionTask(num_classes=2, in_channels=3, channels_last=True).hparams.channels_last


def test_channels_last_batch_converts_the_images_only():
    x, mask = torch.rand(2, 3, 8, 8), torch.zeros(2, 8, 8, dtype=torch.long)
    targets = [{"boxes": torch.rand(1, 4)}]
    out = channels_last_batch((x, mask, targets, torch.arange(2)))
    assert out[0].is_contiguous(memory_format=torch.channels_last)
    assert not x.is_contiguous(memory_format=torch.channels_last)  # the input is left alone
    assert torch.equal(out[0], x) and out[1] is mask and out[2][0]["boxes"] is targets[0]["boxes"]


def _conv_weight(task: ClassificationTask) -> torch.Tensor:
    return next(p for p in task.model.parameters() if p.dim() == 4)


@pytest.mark.parametrize(
    ("stage", "channels_last", "compiled"),
    [(None, False, False), (TrainerFn.PREDICTING, True, False), (TrainerFn.FITTING, True, True)],
)
def test_options_act_only_under_a_trainer_and_compile_only_to_train(stage, channels_last, compiled):
    task = ClassificationTask(num_classes=3, in_channels=3, channels_last=True, compile="aot_eager")
    if stage is not None:
        task.trainer = Trainer(logger=False, enable_checkpointing=False, accelerator="cpu")
        task.trainer.state.fn = stage
    task.configure_model()  # load_from_checkpoint calls it without a Trainer
    nhwc = _conv_weight(task).is_contiguous(memory_format=torch.channels_last)
    assert nhwc is channels_last and _conv_weight(task).is_contiguous() is not channels_last
    assert (task.model._compiled_call_impl is not None) is compiled
    seen = []
    if not compiled:  # what the first convolution receives: the batch, converted or not
        conv = next(m for m in task.model.modules() if isinstance(m, torch.nn.Conv2d))
        conv.register_forward_pre_hook(
            lambda m, args: seen.append(args[0].is_contiguous(memory_format=torch.channels_last))
        )
    with torch.no_grad():
        assert task(torch.rand(2, 3, 16, 16)).shape == (2, 3)
    assert seen == ([] if compiled else [channels_last])
    assert "_orig_mod" not in "".join(task.state_dict())


def _finite_metrics(run: Path) -> dict[str, float]:
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "finished"
    values = {k: v for k, v in metrics.items() if k.startswith("val/") and isinstance(v, float)}
    assert values and all(math.isfinite(v) for v in values.values())
    return values


def test_channels_last_run_matches_the_plain_one_evaluates_and_exports(tmp_path):
    one_epoch = "--trainer.max_epochs=1"
    plain_run = train_run(tmp_path / "plain", 12, one_epoch)
    run = train_run(tmp_path / "nhwc", 12, one_epoch, "--model.channels_last=true")
    plain, nhwc = _finite_metrics(plain_run), _finite_metrics(run)
    assert nhwc.keys() == plain.keys()
    # the same seed and data: only the memory order of the convolutions differs
    assert nhwc["val/loss"] == pytest.approx(plain["val/loss"], rel=1e-3)
    scores = [evaluate(["--run", str(r), "--split", "val"])["metrics"] for r in (plain_run, run)]
    assert scores[1]["loss"] == pytest.approx(scores[0]["loss"], rel=1e-3)
    result, _ = export_run(run, "--format", "onnx", "--out", str(tmp_path / "export"))
    assert [r["file"] for r in result["report"]["artifacts"]] == ["model.onnx"]


@pytest.mark.slow
def test_compiled_run_loads_exports_and_resumes_without_compile(tmp_path):
    """torch.compile with inductor on the CPU (it needs a C compiler: gcc here)."""
    if not shutil.which("cc") and not shutil.which("gcc"):
        pytest.skip("no C compiler: inductor cannot build its kernels here")
    run = train_run(
        tmp_path, 12, "--trainer.max_epochs=1", "--model.compile=true", "--model.channels_last=true"
    )
    _finite_metrics(run)
    state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert state and not [k for k in state if "_orig_mod" in k]
    task = Run(run).load_model()
    assert task.hparams.compile is True and task.model._compiled_call_impl is None  # plain
    plain = ClassificationTask(**{**task.hparams, "compile": False, "channels_last": False})
    plain.load_state_dict(state)  # strict: the keys of an uncompiled network
    result, _ = export_run(run, "--format", "torchscript", "--out", str(tmp_path / "export"))
    assert [r["file"] for r in result["report"]["artifacts"]] == ["model.ts"]
    train_run(tmp_path, 12, "--trainer.max_epochs=2", "--ckpt_path=last", "--model.compile=false")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["resumed_from"] == "last" and metrics["status"] == "finished"
