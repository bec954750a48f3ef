"""``export.py`` for table runs: ONE ONNX file holding the fitted pipeline and the model,
checked against the Python pipeline and model on the validation rows.

The check is the parity that matters to a user: the validation rows are written as a CSV file
and read back by ``predict.py``'s own reader (the pre-step), the graph scores them, and the
scores are compared with ``pipeline.transform`` + the checkpoint's model in Python.
Classification compares probabilities (``--max-logit-diff``, default 1e-4, on probabilities),
regression compares predictions relative to the validation targets' standard deviation (the
same tolerance). ``verification.json`` holds the report; ``model.json`` describes the inputs
(the columns, their kinds, the pre-step) for ``predict.py``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from mlcycle.core.errors import UserError
from mlcycle.core.record import write_json
from mlcycle.evaluators.calibration import log_probs, softmax
from mlcycle.export.calibrate import adjust, check_adjustments
from mlcycle.export.exporters import TaskExport, Verification, register_export
from mlcycle.export.verify import render, size_text
from mlcycle.tables import onnx_graph
from mlcycle.tables.classic import ClassicTabularTask

FILE = "model.onnx"


@register_export("tabular")
class TabularExport(TaskExport):
    """Tables export through :meth:`export_run` (the image flow's hooks do not apply)."""

    quantizable = False

    def check_options(self, args: Any) -> None:
        if args.quantize:
            raise UserError(
                "--quantize int8 is for image models; a table model exports as FP32 ONNX"
            )
        if "onnx" not in args.format:
            raise UserError("a table model exports as one ONNX file; pass --format onnx")

    def verify(self, job: Verification) -> dict[str, Any]:
        raise NotImplementedError("table runs are verified in export_run")

    def output(self, data_info: dict[str, Any], module: nn.Module) -> dict[str, Any]:
        regression = data_info.get("task") == "regression"
        return {
            "kind": "table",
            "task_kind": "regression" if regression else "classification",
            "name": "prediction" if regression else "probabilities",
            "shape": ["batch", 1 if regression else len(data_info.get("class_names", []))],
            "meaning": "the predicted value, in the target's units"
            if regression
            else "class probabilities in class_names order (softmax applied)",
        }

    def table(self, report: dict[str, Any], checkpoint: str) -> str:
        regression = report["task_kind"] == "regression"
        head = ("model", "size", "rows", "max|diff|" + (" / std" if regression else ""),
                "agree", "rmse" if regression else "macro F1", "check")  # fmt: skip
        metric = "rmse" if regression else "macro_f1"
        python = report["python"]
        lines = [(f"python ({checkpoint})", "-", str(report["rows"]), "-", "-",
                  f"{python[metric]:.4f}", "reference")]  # fmt: skip
        r = report["onnx"]
        diff = r["max_relative_diff"] if regression else r["max_abs_prob_diff"]
        agree = "-" if regression else f"{r['label_agree']}/{report['rows']}"
        lines.append(
            (r["file"], size_text(r["size_bytes"]), str(report["rows"]), f"{diff:.2e}", agree,
             f"{r[metric]:.4f}", "pass" if report["passed"] else "FAIL")
        )  # fmt: skip
        return render(head, lines)

    def failures(self, report: dict[str, Any]) -> list[str]:
        return list(report.get("failures", []))

    def export_run(self, run: Any, args: Any) -> dict[str, Any]:
        from mlcycle.export.gate import export_gate, gate_of_run
        from mlcycle.export.run_export import VerificationFailed, prepare_out

        self.check_options(args)
        checkpoint = run.checkpoint(args.checkpoint)
        metrics, objective, gate = gate_of_run(run, args.force)
        clock = time.perf_counter()
        task = run.load_model(args.checkpoint)
        data = run.load_data(num_workers=0)
        out = prepare_out(Path(args.out) if args.out else run.path / "export")
        frame = data.frame("val")
        if len(frame) == 0:
            raise UserError(f"run '{run.path}' has no validation rows to verify the export on")
        model, spec = build_graph(task, data, args.opset)
        temperature, adjusted = adjustments(args, task, data)
        if temperature:
            model = onnx_graph.tempered(model, temperature)
        path = out / FILE
        onnx.save(model, str(path))
        print(
            f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB, opset {args.opset}, pipeline + model)"
        )
        report = verify_table(task, data, path, spec, args.max_logit_diff, temperature)
        report["opset"] = args.opset
        report["checkpoint"] = f"checkpoints/{checkpoint.name}"
        headline = task.monitor.metric
        report[f"recorded_{headline.replace('/', '_')}"] = metrics.get(headline)
        write_json(out / "verification.json", report)
        gate = export_gate(objective, gate, metrics, [path])
        meta = model_json(run, task, data, spec, metrics, checkpoint, report)
        meta["output"].update(adjusted)  # calibration and decision (export/calibrate.py)
        meta["objective"] = objective.to_dict() if objective else None
        meta["gate"] = gate.to_dict() if gate else None
        if not args.no_reference:  # the monitor's reference: mlcycle.tables.monitor
            from mlcycle.tables.monitor import write_reference

            meta["reference"] = write_reference(out, data, meta)
        write_json(out / "model.json", meta)
        print(f"\nverification on {report['rows']} validation rows ({report['checkpoint']}):")
        print(self.table(report, checkpoint.name))
        if gate is not None:
            print(gate.line())
        print(
            f"wrote {out / 'model.json'} and {out / 'verification.json'} "
            f"({time.perf_counter() - clock:.1f}s); predict: python scripts/predict.py {path} --csv ROWS.csv"
        )
        if not report["passed"]:
            raise VerificationFailed("verification failed: " + "; ".join(report["failures"]))
        return {"out": out, "report": report, "model_json": meta}


def build_graph(task: Any, data: Any, opset: int) -> tuple[onnx.ModelProto, dict[str, Any]]:
    """The joined graph and model.json's ``input``: the columns and the pre-step."""
    if hasattr(task, "ensemble_graph"):  # an ensemble of table runs: one pipeline per member
        return task.ensemble_graph(opset)
    pipeline = data.pipeline
    pre = onnx_graph.pre_step(pipeline, data.frame("train").iloc[:5])
    head = onnx_graph.pipeline_graph(pipeline, pre, opset)
    if isinstance(task, ClassicTabularTask):
        tail = onnx_graph.classic_graph(task, opset)
    else:
        tail = onnx_graph.mlp_graph(task, opset)
    return onnx_graph.join(head, tail), input_spec(data, pre)


def adjustments(args: Any, task: Any, data: Any) -> tuple[float | None, dict[str, Any]]:
    """``--calibrate`` and the decision threshold options on the val rows' probabilities: the
    temperature to put after the graph (None: none) and model.json's ``output`` additions."""
    names = list(task.class_names)
    rule = check_adjustments(args, not task.regression, names)
    if not getattr(args, "calibrate", False) and rule is None:
        return None, {}
    probs, y = python_scores(task, data)
    return adjust(args, log_probs(probs), np.asarray(y).astype(int), names, rule)


def input_spec(data: Any, pre: Any) -> dict[str, Any]:
    """model.json's ``input``: the CSV columns predict.py reads (with their kinds), how each
    graph input is made from them, and the id column."""
    schema = data.schema
    dates = onnx_graph.date_inputs(data.pipeline)
    inputs = []
    for name, kind in onnx_graph.input_types(pre):
        item: dict[str, Any] = {"name": name, "type": kind}
        item.update(dates[name] if name in dates else {"column": name})
        inputs.append(item)
    id_column = data.hparams.id_column or next(
        (c.name for c in schema.columns if c.kind == "identifier"), None
    )
    return {
        "kind": "table",
        "columns": [{"name": c.name, "kind": c.kind} for c in schema.features],
        "target": schema.target,
        "id_column": id_column,
        "onnx_inputs": inputs,
        "pre_step": "each value read as its column's kind (numbers, true/false, dates, "
        "category text; the empty cell and pandas' NA words are missing), then dates split "
        "into the parts in onnx_inputs; the graph holds the rest of the pipeline and the model",
    }


def python_scores(task: Any, data: Any) -> tuple[np.ndarray, np.ndarray]:
    """The checkpoint's scores on the val rows through the Python pipeline, and the targets."""
    x, y = data.arrays("val")
    if hasattr(task, "frame_scores"):  # an ensemble of table runs scores the raw rows
        return task.frame_scores(data.frame("val")), np.asarray(y)
    with torch.no_grad():
        scores = task.eval().scores(torch.from_numpy(np.asarray(x, dtype=np.float32)))
    return scores.float().numpy(), np.asarray(y)


def graph_scores(
    path: Path, data: Any, spec: dict[str, Any]
) -> tuple[np.ndarray, list[int], dict[int, str]]:
    """The graph's scores on the val rows as predict.py computes them: written to a CSV file,
    read back by its reader, scored by ONNX Runtime."""
    import onnxruntime as ort

    from mlcycle.edge.rows import read_rows, table_inputs

    frame = data.frame("val")
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "val.csv"
        frame.to_csv(csv, index=False)
        header, rows = read_rows(csv)
    feeds, kept, problems = table_inputs(header, rows, spec)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(None, feeds)[0] if kept else np.zeros((0, 1), dtype=np.float32)
    return np.asarray(out, dtype=np.float32), kept, problems


def _classification(scores: np.ndarray, y: np.ndarray, k: int) -> dict[str, float]:
    from mlcycle.tasks.classification import classification_metrics

    values = classification_metrics(max(k, 2))(torch.from_numpy(scores), torch.from_numpy(y).long())
    return {"accuracy": float(values["acc"]), "macro_f1": float(values["f1"])}


def _regression(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    error = pred.astype(np.float64) - y.astype(np.float64)
    total = float(((y - y.mean()) ** 2).sum()) or 1.0
    return {
        "rmse": float(np.sqrt((error**2).mean())),
        "mae": float(np.abs(error).mean()),
        "r2": 1.0 - float((error**2).sum()) / total,
    }


def verify_table(
    task: Any,
    data: Any,
    path: Path,
    spec: dict[str, Any],
    tolerance: float,
    temperature: float | None = None,
) -> dict[str, Any]:
    """The graph against the Python pipeline and model (with the graph's ``temperature``) on
    the validation rows."""
    python, y = python_scores(task, data)
    if temperature:
        python = softmax(log_probs(python) / temperature).astype(np.float32)
    onnx_out, kept, problems = graph_scores(path, data, spec)
    regression = bool(task.regression)
    report: dict[str, Any] = {
        "task_kind": "regression" if regression else "classification",
        "rows": len(kept),
        "rows_not_scored": {str(i): why for i, why in problems.items()},
        "tolerance": tolerance,
    }
    python, y = python[kept], y[kept]
    row: dict[str, Any] = {"file": path.name, "format": "onnx", "size_bytes": path.stat().st_size}
    failures = []
    if regression:
        onnx_pred = onnx_out.reshape(len(kept), -1)[:, 0]
        scale = float(np.std(y)) or 1.0
        diff = np.abs(onnx_pred.astype(np.float64) - python.astype(np.float64))
        row["max_abs_diff"] = float(diff.max()) if len(diff) else 0.0
        row["max_relative_diff"] = row["max_abs_diff"] / scale
        row.update(_regression(onnx_pred, y))
        report["python"] = _regression(python, y)
        if row["max_relative_diff"] > tolerance:
            failures.append(
                f"max |prediction - python| / std(val target) {row['max_relative_diff']:.2e} over {tolerance:g}"
            )
    else:
        k = int(task.hparams.num_classes)
        diff = np.abs(onnx_out.astype(np.float64) - python.astype(np.float64))
        row["max_abs_prob_diff"] = float(diff.max()) if diff.size else 0.0
        row["label_agree"] = int((onnx_out.argmax(axis=1) == python.argmax(axis=1)).sum())
        row.update(_classification(onnx_out, y, k))
        report["python"] = _classification(python, y, k)
        if row["max_abs_prob_diff"] > tolerance:
            failures.append(
                f"max |probability - python| {row['max_abs_prob_diff']:.2e} over {tolerance:g}"
            )
    if problems:
        failures.append(
            f"{len(problems)} validation row(s) could not be read by predict.py "
            f"(first: {next(iter(problems.values()))})"
        )
    row["passed"] = not failures
    report["onnx"] = row
    report["passed"] = not failures
    report["failures"] = failures
    return report


def model_json(
    run: Any,
    task: Any,
    data: Any,
    spec: dict[str, Any],
    metrics: dict[str, Any],
    checkpoint: Path,
    report: dict[str, Any],
) -> dict[str, Any]:
    """``model.json`` of a table export: what predict.py needs, and where it came from."""
    from datetime import datetime, timezone

    from mlcycle.export.metadata import FORMAT_VERSION, library_versions
    from mlcycle.run.loader import sha256

    info = data.describe()
    return {
        "format_version": FORMAT_VERSION,
        "task": task.task_name,
        "task_class": str(run.config.get("model", {}).get("class_path")),
        "arch": getattr(task, "estimator_path", None) or task.hparams.get("arch"),
        "class_names": list(task.class_names),
        "num_classes": len(task.class_names),
        "input": spec,
        "output": TabularExport().output(info, nn.Identity()),
        "files": {"onnx": FILE},
        "onnx": {"opset": report.get("opset"), "exporter": "skl2onnx + torch.onnx, merged"},
        "validation_metrics": {
            k: v for k, v in metrics.items() if k.startswith("val/") or k == "best_epoch"
        },
        "checkpoint": {"file": checkpoint.name, "sha256": sha256(checkpoint)},
        "verification": {"passed": report["passed"], "report": "verification.json"},
        "versions": library_versions(),
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
