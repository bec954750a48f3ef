"""``scripts/export.py``: TorchScript, ONNX and INT8 ONNX from a run, verified against eager."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Subset

from mlcycle.commands.guard import ArgParser, main_guard
from mlcycle.core.errors import UserError
from mlcycle.core.imports import import_object
from mlcycle.core.objective import Gate, Objective, parse_objective, train_gate
from mlcycle.core.record import write_json
from mlcycle.export.detection_verify import MAX_BOX_DIFF, MAX_SCORE_DIFF
from mlcycle.export.metadata import build_model_json, input_spec
from mlcycle.export.onnx_export import DEFAULT_OPSET, EXPORTERS, export_onnx, opset_range
from mlcycle.export.quantize import CALIBRATION_METHODS, quantize_int8
from mlcycle.export.exporters import TaskExport, Verification, export_for
from mlcycle.export.torchscript import export_torchscript
from mlcycle.export.verify import MAX_F1_DROP, MAX_LOGIT_DIFF, Artifact
from mlcycle.monitor.reference import FILE as REFERENCE
from mlcycle.monitor.reference import write_reference
from mlcycle.run.loader import Run, sha256

FORMATS = ("torchscript", "onnx")
FILES = {"torchscript": "model.ts", "onnx": "model.onnx", "onnx_int8": "model.int8.onnx"}
OUTPUTS = (*FILES.values(), "model.json", "verification.json", REFERENCE)


class VerificationFailed(UserError):
    """An artifact disagrees with the eager model beyond the tolerance."""

    exit_code = 1


def build_parser() -> ArgParser:
    parser = ArgParser(
        prog="export.py",
        description="Export a trained run to TorchScript and ONNX (optionally INT8) for edge "
        "devices; every artifact is checked against the eager model on the validation images.",
    )
    parser.add_argument("--run", required=True, help="Run directory written by train.py.")
    parser.add_argument(
        "--format", nargs="+", choices=FORMATS, default=list(FORMATS), help="Formats to write."
    )
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset version.")
    parser.add_argument(
        "--exporter",
        choices=EXPORTERS,
        default="torchscript",
        help="torch.onnx exporter: the TorchScript-based one (default) or dynamo (opset >= 18).",
    )
    parser.add_argument("--quantize", choices=["int8"], help="Also write a static INT8 ONNX model.")
    parser.add_argument(
        "--calibration-images", type=int, default=256, help="Training images to calibrate INT8 on."
    )
    parser.add_argument("--calibration-method", choices=list(CALIBRATION_METHODS), default="minmax")
    parser.add_argument("--checkpoint", choices=["best", "last"], default="best")
    parser.add_argument("--out", help="Output folder (default: RUN/export).")
    parser.add_argument("--batch-size", type=int, default=64, help="Verification batch size.")
    parser.add_argument(
        "--max-logit-diff",
        type=float,
        default=MAX_LOGIT_DIFF,
        help="FP32 tolerance on logits (classification, segmentation).",
    )
    parser.add_argument(
        "--max-f1-drop",
        type=float,
        default=MAX_F1_DROP,
        help="INT8 tolerance: how much val macro F1 (segmentation: mean IoU) may drop; "
        "0.01 = 1 point.",
    )
    parser.add_argument(
        "--max-box-diff",
        type=float,
        default=MAX_BOX_DIFF,
        help="Detection: how far (pixels) an artifact's box may be from eager's.",
    )
    parser.add_argument(
        "--max-score-diff",
        type=float,
        default=MAX_SCORE_DIFF,
        help="Detection: how far an artifact's score may be from eager's.",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="Export even when the run failed its objective on val.",
    )
    parser.add_argument(
        "--no-reference",
        action="store_true",
        help="Skip reference.json (the train/val input statistics and val predictions that "
        "scripts/monitor.py compares production with).",
    )
    return parser


def prepare_out(path: Path) -> Path:
    """Create the output folder, prove it is writable, and clear artifacts of an earlier export."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write_test"
        probe.write_bytes(b"")
        probe.unlink()
        for name in OUTPUTS:
            (path / name).unlink(missing_ok=True)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UserError(
            f"cannot write to output folder '{path}': {reason}; pass a writable --out"
        ) from exc
    return path


def _calibration(
    exporter: TaskExport, dataset: Any, count: int, batch_size: int = 32
) -> Iterator[np.ndarray]:
    """A fixed random subset of the (unaugmented) training images."""
    picks = np.random.default_rng(0).permutation(len(dataset))[: max(1, count)]
    for x, _ in exporter.batches(Subset(dataset, picks.tolist()), batch_size):
        yield x.numpy()


def val_gate(run: Run, metrics: dict[str, Any]) -> tuple[Objective | None, Gate | None]:
    """The run's objective and its gate on val: metrics.json's, else computed from it."""
    objective = parse_objective(run.config.get("objective"))
    if objective is None:
        return None, None
    if "gate" in metrics:
        return objective, Gate.from_dict(metrics["gate"])
    return objective, train_gate(objective, metrics)


def check_gate_passed(run: Run, gate: Gate | None, force: bool) -> None:
    """Refuse a run that failed its objective on val, unless ``--force``."""
    if gate is None or gate.passed:
        return
    failed = "; ".join(c["detail"] for c in gate.failed())
    if not force:
        raise UserError(
            f"run '{run.path}' failed its objective on val ({failed}); retrain, "
            "or export anyway with --force"
        )
    print(
        f"warning: exporting a run that failed its objective on val ({failed}) [--force]",
        file=sys.stderr,
    )


def export_gate(
    objective: Objective | None, gate: Gate | None, metrics: dict[str, Any], files: list[Path]
) -> Gate | None:
    """The val gate, with ``max_size_mb`` measured on the exported file a device would load
    (the INT8 ONNX, else the ONNX, else TorchScript)."""
    if objective is None or objective.max_size_mb is None or not files:
        return gate
    path = files[-1]
    sized = train_gate(objective, metrics, size_mb=path.stat().st_size / 1e6)
    for check in sized.checks:
        if check["name"] == "max_size_mb":
            check["detail"] += f" ({path.name})"
    return sized


def _mb(path: Path) -> str:
    return f"{path.stat().st_size / 1e6:.2f} MB"


def _check_args(args: Any) -> list[str]:
    """The formats to write, after refusing option combinations that cannot work."""
    formats = list(dict.fromkeys(args.format))
    if args.quantize and "onnx" not in formats:
        raise UserError("--quantize int8 quantizes the ONNX model; add onnx to --format")
    low, high = opset_range(args.exporter)
    if "onnx" in formats and not low <= args.opset <= high:
        raise UserError(
            f"--opset {args.opset} is not supported by the {args.exporter} exporter; use {low}..{high}"
        )
    if args.batch_size < 1 or args.calibration_images < 1:
        raise UserError("--batch-size and --calibration-images must be at least 1")
    return formats


def _write_artifacts(
    args: Any, formats: list[str], exporter: TaskExport, model: Any, data: Any, out: Path
) -> tuple[list[Artifact], int]:
    """TorchScript, ONNX and INT8 files as asked; returns them and the calibration count."""
    val, train = data.dataset("val"), data.dataset("train")
    example = next(exporter.batches(val, 2))[0]
    io = exporter.io
    artifacts: list[Artifact] = []
    if "torchscript" in formats:
        path = export_torchscript(model, example, out / FILES["torchscript"], len(io.outputs))
        artifacts.append(Artifact(path, "torchscript", "fp32"))
        print(f"wrote {path} ({_mb(path)})")
    if "onnx" in formats:
        path = export_onnx(model, example, out / FILES["onnx"], args.opset, args.exporter, io=io)
        artifacts.append(Artifact(path, "onnx", "fp32"))
        batch = "dynamic batch" if io.dynamic_batch else "batch 1"
        print(f"wrote {path} ({_mb(path)}, opset {args.opset}, {batch})")
    calibrated = 0
    if args.quantize == "int8":
        path = out / FILES["onnx_int8"]
        calibration = _calibration(exporter, train, args.calibration_images)
        calibrated = quantize_int8(out / FILES["onnx"], path, calibration, args.calibration_method)
        artifacts.append(Artifact(path, "onnx", "int8"))
        print(f"wrote {path} ({_mb(path)}, static INT8 calibrated on {calibrated} training images)")
    return artifacts, calibrated


def _model_json(
    args: Any,
    formats: list[str],
    run: Run,
    exporter: TaskExport,
    task: Any,
    model: Any,
    **record: Any,
) -> dict[str, Any]:
    """``model.json``: what a device needs to run the artifacts, and where they came from."""
    checkpoint, artifacts, report = record["checkpoint"], record["artifacts"], record["report"]
    files = {a.format if a.precision == "fp32" else "onnx_int8": a.name for a in artifacts}
    meta = build_model_json(
        config=run.config,
        data_info=run.data_info,
        metrics=record["metrics"],
        checkpoint=checkpoint,
        checkpoint_sha256=sha256(checkpoint),
        files=files,
        opset=args.opset if "onnx" in formats else None,
        exporter=args.exporter if "onnx" in formats else None,
        hparams=dict(getattr(task, "hparams", {})),
        output=exporter.output(run.data_info, model),
        dynamic_axes=exporter.io.dynamic_axes,
        task=task.task_name,
    )
    if not exporter.io.dynamic_batch:
        meta["input"]["shape"][0] = 1
    meta["verification"] = {"passed": report["passed"], "report": "verification.json"}
    objective, gate = record["objective"], record["gate"]
    meta["objective"] = objective.to_dict() if objective else None
    meta["gate"] = gate.to_dict() if gate else None
    return meta


@main_guard
def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    formats = _check_args(args)
    run = Run(args.run)
    checkpoint = run.checkpoint(args.checkpoint)
    task_class = import_object(run.config["model"]["class_path"], "class in the run's config.yaml")
    done = export_for(task_class.task_name).export_run(run, args)  # tables export on their own
    if done is not None:
        return done
    input_spec(run.data_info)  # fails early when data.json lacks the preprocessing
    metrics_file = run.path / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    objective, gate = val_gate(run, metrics)
    check_gate_passed(run, gate, args.force)
    clock = time.perf_counter()
    task = run.load_model(args.checkpoint)
    exporter = export_for(task.task_name)
    exporter.check_options(args)
    out = prepare_out(Path(args.out) if args.out else run.path / "export")
    model = exporter.module(task).float().cpu().eval()
    data = run.load_data(num_workers=0)
    if len(data.dataset("val")) == 0:
        raise UserError(f"run '{run.path}' has no validation images to verify the export on")
    artifacts, calibrated = _write_artifacts(args, formats, exporter, model, data, out)

    job = Verification(model, artifacts, data.dataset("val"), run.data_info, args)
    report = exporter.verify(job)
    report["checkpoint"] = f"checkpoints/{checkpoint.name}"
    report[f"recorded_{exporter.headline.replace('/', '_')}"] = metrics.get(exporter.headline)
    if calibrated:
        report["calibration_images"] = calibrated
    write_json(out / "verification.json", report)
    gate = export_gate(objective, gate, metrics, [a.path for a in artifacts])
    meta = _model_json(
        args, formats, run, exporter, task, model, checkpoint=checkpoint, artifacts=artifacts,
        report=report, metrics=metrics, objective=objective, gate=gate,
    )  # fmt: skip
    if not args.no_reference:
        meta["reference"] = write_reference(out, data, meta)
    write_json(out / "model.json", meta)

    print(f"\nverification on {report['images']} validation images ({report['checkpoint']}):")
    print(exporter.table(report, checkpoint.name))
    for line in exporter.summary(report):
        print(line)
    if gate is not None:
        print(gate.line())
    print(
        f"wrote {out / 'model.json'} and {out / 'verification.json'} "
        f"({time.perf_counter() - clock:.1f}s)"
    )
    if not report["passed"]:
        raise VerificationFailed("verification failed: " + "; ".join(exporter.failures(report)))
    return {"out": out, "report": report, "model_json": meta}
