"""export.py on a tiny trained run: artifacts, model.json, verification, errors."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from export_helpers import BLOCKER, export_run, exported_run, run_blocked
from torch import nn
from torch.nn import functional as F

from mlcycle.export import run_export


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    return exported_run(tmp_path_factory)


def test_export_writes_every_artifact_and_verifies(exported):
    run, result, printed = exported
    out = run / "export"
    assert result["out"] == out
    for name in ("model.ts", "model.onnx", "model.int8.onnx", "model.json", "verification.json"):
        assert (out / name).stat().st_size > 0, name
    report = json.loads((out / "verification.json").read_text())
    val_images = sum(
        1 for line in (run / "splits.csv").read_text().splitlines() if line.endswith(",val")
    )
    assert report["images"] == val_images >= 6 and report["passed"] is True
    rows = {row["file"]: row for row in report["artifacts"]}
    assert set(rows) == {"model.ts", "model.onnx", "model.int8.onnx"}
    for name in ("model.ts", "model.onnx"):
        assert rows[name]["precision"] == "fp32"
        assert rows[name]["max_abs_logit_diff"] <= 1e-4
        assert rows[name]["top1_agree"] == val_images
        assert rows[name]["macro_f1"] == pytest.approx(report["eager"]["macro_f1"])
    int8 = rows["model.int8.onnx"]
    assert report["eager"]["macro_f1"] - int8["macro_f1"] <= 0.01
    assert int8["size_vs_fp32_onnx"] < 0.4  # weights are a quarter of the size
    # best.ckpt scores now what training recorded for it.
    assert report["eager"]["macro_f1"] == pytest.approx(report["recorded_val_f1"], abs=1e-4)
    # A table row per artifact and the INT8 summary are printed.
    for name in rows:
        assert any(line.startswith(name) and line.endswith("pass") for line in printed.splitlines())
    assert "INT8:" in printed and "smaller than model.onnx" in printed


def test_model_json_describes_the_model(exported):
    run, _, _ = exported
    meta = json.loads((run / "export" / "model.json").read_text())
    data = json.loads((run / "data.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    assert meta["task"] == "classification" and meta["arch"] == "small_cnn"
    assert meta["class_names"] == data["class_names"] == ["blue", "green", "red"]
    spec = meta["input"]
    assert (spec["channels"], spec["height"], spec["width"]) == (3, 16, 16)
    assert spec["mean"] == data["mean"] and spec["std"] == data["std"]
    assert spec["resize"]["method"] == "bilinear" and "0..255" in spec["value_range"]
    assert meta["output"]["name"] == "logits" and meta["output"]["softmax_applied"] is False
    assert meta["validation_metrics"]["val/f1"] == metrics["val/f1"]
    assert meta["validation_metrics"]["val/acc"] == metrics["val/acc"]
    digest = hashlib.sha256((run / "checkpoints" / "best.ckpt").read_bytes()).hexdigest()
    assert meta["checkpoint"] == {"file": "best.ckpt", "sha256": digest}
    assert {"mlcycle", "torch", "onnx", "onnxruntime"} <= set(meta["versions"])
    assert meta["files"] == {
        "torchscript": "model.ts",
        "onnx": "model.onnx",
        "onnx_int8": "model.int8.onnx",
    }
    assert meta["onnx"]["opset"] == 17 and meta["verification"]["passed"] is True


def test_onnx_is_checked_and_has_a_dynamic_batch(exported):
    run, _, _ = exported
    for name in ("model.onnx", "model.int8.onnx"):
        path = run / "export" / name
        onnx.checker.check_model(str(path), full_check=True)
        proto = onnx.load(str(path))
        assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) == 17
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert session.get_inputs()[0].name == "input"
        for batch in (1, 5):
            x = np.random.default_rng(batch).normal(size=(batch, 3, 16, 16)).astype(np.float32)
            assert session.run(None, {"input": x})[0].shape == (batch, 3)


def test_torchscript_loads_in_a_process_without_mlcycle(exported, tmp_path):
    run, _, _ = exported
    from mlcycle.run.loader import Run

    model = Run(run).load_model().model.eval()
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(x).numpy()
    np.save(tmp_path / "x.npy", x.numpy())
    script = tmp_path / "load_ts.py"
    script.write_text(
        "import sys, numpy as np, torch\n"
        f"m = torch.jit.load({str(run / 'export' / 'model.ts')!r})\n"
        f"x = torch.from_numpy(np.load({str(tmp_path / 'x.npy')!r}))\n"
        f"np.save({str(tmp_path / 'y.npy')!r}, m(x).detach().numpy())\n"
    )
    done = run_blocked(("mlcycle", "lightning", "albumentations"), script)
    assert done.returncode == 0, done.stderr
    assert np.abs(np.load(tmp_path / "y.npy") - expected).max() <= 1e-5


def test_one_format_and_another_folder(exported, tmp_path):
    run, _, _ = exported
    out = tmp_path / "onnx_only"
    (out).mkdir()
    (out / "model.ts").write_text("stale file from an earlier export")
    result, _ = export_run(run, "--format", "onnx", "--out", str(out))
    assert sorted(p.name for p in out.iterdir()) == [
        "model.json",
        "model.onnx",
        "reference.json",
        "verification.json",
    ]
    assert [r["file"] for r in result["report"]["artifacts"]] == ["model.onnx"]
    assert json.loads((out / "model.json").read_text())["files"] == {"onnx": "model.onnx"}


class Offset(nn.Module):
    """Shifts one logit by 1e-3: small, but beyond the FP32 tolerance."""

    def __init__(self, model: nn.Module, num_classes: int = 3) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("offset", torch.zeros(num_classes))
        self.offset[0] = 1e-3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) + self.offset


def test_failed_verification_names_the_artifact_and_exits_1(
    exported, tmp_path, monkeypatch, capsys
):
    run, _, _ = exported
    real = run_export.export_onnx
    monkeypatch.setattr(
        run_export, "export_onnx", lambda model, *a, **k: real(Offset(model), *a, **k)
    )
    with pytest.raises(SystemExit) as exit_info:
        export_run(run, "--out", str(tmp_path / "bad"))
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "model.onnx: max |logit diff| 0.001 exceeds 0.0001" in err[0]
    assert "model.ts" not in err[0]
    report = json.loads((tmp_path / "bad" / "verification.json").read_text())
    assert report["passed"] is False
    assert [r["passed"] for r in report["artifacts"]] == [True, False]


class GridSampled(nn.Module):
    """The run's model behind grid_sample, an operator ONNX has only from opset 16."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        theta = torch.eye(2, 3).unsqueeze(0)
        self.register_buffer("grid", F.affine_grid(theta, [1, 3, 16, 16], align_corners=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grid = self.grid.expand(x.shape[0], -1, -1, -1)
        return self.model(F.grid_sample(x, grid, align_corners=False))


def _one_error_line(capsys, code: int = 2) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: ")
    return err[0]


def test_operator_the_opset_cannot_express(exported, tmp_path, monkeypatch, capsys):
    run, _, _ = exported
    from mlcycle.run.loader import Run

    real = Run.load_model

    def load(self, which="best"):
        task = real(self, which)
        task.model = GridSampled(task.model)
        return task

    monkeypatch.setattr(Run, "load_model", load)
    with pytest.raises(SystemExit) as exit_info:
        export_run(run, "--format", "onnx", "--opset", "15", "--out", str(tmp_path / "e"))
    assert exit_info.value.code == 2
    line = _one_error_line(capsys)
    assert "'aten::grid_sampler'" in line and "opset 15" in line and "--opset 16" in line


def test_run_without_checkpoint(exported, tmp_path, capsys):
    run, _, _ = exported
    empty = tmp_path / "empty_run"
    (empty / "checkpoints").mkdir(parents=True)
    for name in ("config.yaml", "data.json", "splits.csv"):
        shutil.copy(run / name, empty / name)
    with pytest.raises(SystemExit) as exit_info:
        export_run(empty)
    assert exit_info.value.code == 2
    assert "checkpoint" in _one_error_line(capsys)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "{file}/export"], "cannot write to output folder"),
        (["--opset", "99"], "--opset 99 is not supported"),
        (["--format", "torchscript", "--quantize", "int8"], "add onnx to --format"),
        (
            ["--format", "tflite"],
            "key 'format': expected one of 'torchscript', 'onnx', got 'tflite'",
        ),
    ],
)
def test_usage_errors(exported, tmp_path, capsys, args, message):
    run, _, _ = exported
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    args = [a.replace("{file}", str(blocker)) for a in args]
    with pytest.raises(SystemExit) as exit_info:
        export_run(run, *args)
    assert exit_info.value.code == 2
    assert message in _one_error_line(capsys)


def test_blocker_really_blocks(tmp_path):
    # The import-restriction tests are only as good as the blocker: prove it refuses mlcycle.
    script = tmp_path / "imports_mlcycle.py"
    script.write_text("import mlcycle\n")
    done = run_blocked(("mlcycle",), script)
    assert done.returncode != 0 and "mlcycle is blocked" in done.stderr
    assert "sys.meta_path" in BLOCKER


def test_export_script_entry_point(exported, tmp_path):
    run, _, _ = exported
    import subprocess
    import sys

    done = subprocess.run(
        [
            sys.executable,
            "scripts/export.py",
            "--run",
            str(run),
            "--format",
            "torchscript",
            "--out",
            str(tmp_path / "ts"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.returncode == 0, done.stderr
    assert "model.ts" in done.stdout and (tmp_path / "ts" / "model.ts").is_file()
