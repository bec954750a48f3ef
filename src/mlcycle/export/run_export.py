"""Export one trained run: TorchScript, ONNX and INT8 ONNX, each verified against eager.

The flow is the same for every task: load the run, trace the module the task's exporter gives
(:mod:`mlcycle.export.exporters`), write the artifacts, verify them on the validation split,
write ``verification.json``, ``model.json`` and monitor's ``reference.json``. A task whose
artifact is not one traced module (tables) writes its whole export in its exporter's
``export_run``. ``export.py`` (:mod:`mlcycle.commands.export`) parses :class:`ExportOptions`;
retrain exports its champion through :func:`export_run` too.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Subset

from mlcycle.core.errors import UserError
from mlcycle.core.imports import import_object
from mlcycle.core.record import write_json
from mlcycle.export.calibrate import calibrated_module
from mlcycle.export.detection_verify import MAX_BOX_DIFF, MAX_SCORE_DIFF
from mlcycle.export.exporters import TaskExport, Verification, export_for
from mlcycle.export.gate import export_gate, gate_of_run
from mlcycle.export.metadata import build_model_json, input_spec
from mlcycle.export.onnx_export import DEFAULT_OPSET, export_onnx, opset_range
from mlcycle.export.quantize import quantize_int8
from mlcycle.export.torchscript import export_torchscript
from mlcycle.export.verify import MAX_F1_DROP, MAX_LOGIT_DIFF, Artifact
from mlcycle.monitor.reference import FILE as REFERENCE
from mlcycle.monitor.reference import write_reference
from mlcycle.run import tracking
from mlcycle.run.loader import Run, sha256
from mlcycle.tasks.tta import set_tta, takes_tta, tta_of

FORMATS = ("torchscript", "onnx")
FILES = {"torchscript": "model.ts", "onnx": "model.onnx", "onnx_int8": "model.int8.onnx"}
OUTPUTS = (*FILES.values(), "model.json", "verification.json", REFERENCE)


@dataclass
class ExportOptions:
    """What to export and how strictly to verify it (``export.py``'s options, same names)."""

    run: str  # the run directory written by train.py
    format: list[str] = field(default_factory=lambda: list(FORMATS))
    opset: int = DEFAULT_OPSET
    exporter: str = "torchscript"  # torch.onnx's TorchScript-based exporter, or "dynamo"
    quantize: str | None = None  # "int8": also a static INT8 ONNX model
    calibration_images: int = 256
    calibration_method: str = "minmax"
    checkpoint: str = "best"
    out: str | None = None  # default: RUN/export
    batch_size: int = 64  # verification batch size
    max_logit_diff: float = MAX_LOGIT_DIFF
    max_f1_drop: float = MAX_F1_DROP
    max_box_diff: float = MAX_BOX_DIFF
    max_score_diff: float = MAX_SCORE_DIFF
    force: bool = False  # export even when the run failed its objective on val
    no_reference: bool = False  # skip reference.json
    tta: str | None = None  # flips in the graph instead of the run's model.tta ("none": without)
    calibrate: bool = False  # temperature scaling fitted on val, inside the graph
    threshold_cost: str | None = None  # binary: "FP,FN" costs; the threshold of least val cost
    target_precision: float | None = None  # binary: the threshold reaching it on val
    target_recall: float | None = None  # binary: the threshold reaching it on val
    positive_class: str | None = None  # binary: the class thresholded (default: the second)


class VerificationFailed(UserError):
    """An artifact disagrees with the eager model beyond the tolerance."""

    exit_code = 1


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


def _mb(path: Path) -> str:
    return f"{path.stat().st_size / 1e6:.2f} MB"


def check_formats(options: ExportOptions) -> list[str]:
    """The formats to write, after refusing option combinations that cannot work."""
    formats = list(dict.fromkeys(options.format))
    if options.quantize and "onnx" not in formats:
        raise UserError("--quantize int8 quantizes the ONNX model; add onnx to --format")
    low, high = opset_range(options.exporter)
    if "onnx" in formats and not low <= options.opset <= high:
        raise UserError(
            f"--opset {options.opset} is not supported by the {options.exporter} exporter; use {low}..{high}"
        )
    if options.batch_size < 1 or options.calibration_images < 1:
        raise UserError("--batch-size and --calibration-images must be at least 1")
    return formats


def _write_artifacts(
    options: ExportOptions,
    formats: list[str],
    exporter: TaskExport,
    model: Any,
    data: Any,
    out: Path,
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
        path = export_onnx(
            model, example, out / FILES["onnx"], options.opset, options.exporter, io=io
        )
        artifacts.append(Artifact(path, "onnx", "fp32"))
        batch = "dynamic batch" if io.dynamic_batch else "batch 1"
        print(f"wrote {path} ({_mb(path)}, opset {options.opset}, {batch})")
    calibrated = 0
    if options.quantize == "int8":
        path = out / FILES["onnx_int8"]
        calibration = _calibration(exporter, train, options.calibration_images)
        calibrated = quantize_int8(
            out / FILES["onnx"], path, calibration, options.calibration_method
        )
        artifacts.append(Artifact(path, "onnx", "int8"))
        print(f"wrote {path} ({_mb(path)}, static INT8 calibrated on {calibrated} training images)")
    return artifacts, calibrated


def _model_json(
    options: ExportOptions,
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
        opset=options.opset if "onnx" in formats else None,
        exporter=options.exporter if "onnx" in formats else None,
        hparams=dict(getattr(task, "hparams", {})),
        output=exporter.output(run.data_info, model),
        dynamic_axes=exporter.io.dynamic_axes,
        task=task.task_name,
    )
    if not exporter.io.dynamic_batch:
        meta["input"]["shape"][0] = 1
    meta["tta"] = tta_of(task)  # the flips averaged inside the graph, or null
    meta["verification"] = {"passed": report["passed"], "report": "verification.json"}
    objective, gate = record["objective"], record["gate"]
    meta["objective"] = objective.to_dict() if objective else None
    meta["gate"] = gate.to_dict() if gate else None
    return meta


def _print_result(exporter: TaskExport, report: dict[str, Any], out: Path, **done: Any) -> None:
    """The verification table, the gate's line and what was written."""
    print(f"\nverification on {report['images']} validation images ({report['checkpoint']}):")
    print(exporter.table(report, done["checkpoint"].name))
    for line in exporter.summary(report):
        print(line)
    if done["gate"] is not None:
        print(done["gate"].line())
    print(
        f"wrote {out / 'model.json'} and {out / 'verification.json'} "
        f"({time.perf_counter() - done['clock']:.1f}s)"
    )


def export_run(options: ExportOptions) -> dict[str, Any]:
    """Export ``options.run``; ``{"out", "report", "model_json"}``. Raises
    :class:`VerificationFailed` (exit 1) when an artifact disagrees with eager, after writing.
    A verified export goes to the run's experiment trackers (MLflow: artifacts, a registered
    model version; :mod:`mlcycle.run.tracking`)."""
    done = _export(options)
    tracking.exported(Path(options.run), Path(done["out"]))
    return done


def _export(options: ExportOptions) -> dict[str, Any]:
    formats = check_formats(options)
    run = Run(options.run)
    checkpoint = run.checkpoint(options.checkpoint)
    task_class = import_object(run.config["model"]["class_path"], "class in the run's config.yaml")
    if options.tta is not None and not takes_tta(task_class):
        raise UserError(f"--tta: a {task_class.task_name} run has no test-time augmentation")
    done = export_for(task_class.task_name).export_run(run, options)  # tables: on their own
    if done is not None:
        return done
    input_spec(run.data_info)  # fails early when data.json lacks the preprocessing
    metrics, objective, gate = gate_of_run(run, options.force)
    clock = time.perf_counter()
    task = run.load_model(options.checkpoint)
    set_tta(task, options.tta)
    exporter = export_for(task.task_name)
    exporter.check_options(options)
    out = prepare_out(Path(options.out) if options.out else run.path / "export")
    model = exporter.module(task).float().cpu().eval()
    data = run.load_data(num_workers=0)
    if len(data.dataset("val")) == 0:
        raise UserError(f"run '{run.path}' has no validation images to verify the export on")
    names = list(run.data_info.get("class_names") or [])
    described = model  # the output's description is that of the untempered module
    model, adjusted = calibrated_module(options, exporter, model, data.dataset("val"), names)
    artifacts, calibrated = _write_artifacts(options, formats, exporter, model, data, out)

    job = Verification(model, artifacts, data.dataset("val"), run.data_info, options)
    report = exporter.verify(job)
    report["checkpoint"] = f"checkpoints/{checkpoint.name}"
    report["tta"] = tta_of(task)  # eager and every artifact alike
    report[f"recorded_{exporter.headline.replace('/', '_')}"] = metrics.get(exporter.headline)
    if calibrated:
        report["calibration_images"] = calibrated
    write_json(out / "verification.json", report)
    gate = export_gate(objective, gate, metrics, [a.path for a in artifacts])
    meta = _model_json(
        options, formats, run, exporter, task, described, checkpoint=checkpoint,
        artifacts=artifacts, report=report, metrics=metrics, objective=objective, gate=gate,
    )  # fmt: skip
    meta["output"].update(adjusted)  # calibration and decision (export/calibrate.py)
    if not options.no_reference:
        meta["reference"] = write_reference(out, data, meta)
    write_json(out / "model.json", meta)
    _print_result(exporter, report, out, checkpoint=checkpoint, gate=gate, clock=clock)
    if not report["passed"]:
        raise VerificationFailed("verification failed: " + "; ".join(exporter.failures(report)))
    return {"out": out, "report": report, "model_json": meta}
