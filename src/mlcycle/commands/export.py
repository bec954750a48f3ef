"""``mlcycle export``: TorchScript, ONNX and INT8 ONNX from a run, verified against eager
(:func:`mlcycle.export.run_export.export_run` does the work).

The keys are :class:`~mlcycle.export.run_export.ExportOptions`' (same names and defaults, which
a test checks), written here so that ``--help`` answers without importing torch.
"""

from __future__ import annotations

from typing import Any, Literal

from mlcycle.commands.guard import main_guard
from mlcycle.commands.parser import CommandParser

FORMAT = Literal["torchscript", "onnx"]


def parser() -> CommandParser:
    p = CommandParser(
        "export",
        "Export a trained run to TorchScript and ONNX (optionally INT8) for edge devices; every "
        "artifact is checked against the eager model on the validation images.",
    )
    p.add_argument("--run", type=str, required=True, help="Run directory written by train.py.")
    p.add_argument("--format", type=FORMAT, nargs="+", default=["torchscript", "onnx"], help="Formats to write.")  # fmt: skip
    p.add_argument("--opset", type=int, default=17, help="ONNX opset version.")
    p.add_argument("--exporter", type=Literal["torchscript", "dynamo"], default="torchscript", help="torch.onnx exporter: the TorchScript-based one (default) or dynamo (opset >= 18).")  # fmt: skip
    p.add_argument("--quantize", type=Literal["int8"] | None, default=None, help="Also write a static INT8 ONNX model.")  # fmt: skip
    p.add_argument("--calibration_images", type=int, default=256, help="Training images to calibrate INT8 on.")  # fmt: skip
    p.add_argument("--calibration_method", type=Literal["minmax", "percentile", "entropy"], default="minmax")  # fmt: skip
    p.add_argument("--checkpoint", type=Literal["best", "last"], default="best")
    p.add_argument("--out", type=str | None, default=None, help="Output folder (default: RUN/export).")  # fmt: skip
    p.add_argument("--batch_size", type=int, default=64, help="Verification batch size.")
    p.add_argument("--max_logit_diff", type=float, default=1e-4, help="FP32 tolerance on logits (classification, segmentation).")  # fmt: skip
    p.add_argument("--max_f1_drop", type=float, default=0.01, help="INT8 tolerance: how much val macro F1 (segmentation: mean IoU) may drop; 0.01 = 1 point.")  # fmt: skip
    p.add_argument("--max_box_diff", type=float, default=1e-3, help="Detection: how far (pixels) an artifact's box may be from eager's.")  # fmt: skip
    p.add_argument("--max_score_diff", type=float, default=1e-4, help="Detection: how far an artifact's score may be from eager's.")  # fmt: skip
    p.add_argument("--force", action="store_true", help="Export even when the run failed its objective on val.")  # fmt: skip
    p.add_argument("--no_reference", action="store_true", help="Skip reference.json (the train/val input statistics and val predictions that mlcycle monitor compares production with).")  # fmt: skip
    p.add_argument("--tta", type=str | None, default=None, help="Test-time flips inside the graph instead of the run's model.tta: flip, hflip, vflip, hflip,vflip or none.")  # fmt: skip
    p.add_argument("--calibrate", action="store_true", help="Classifiers: fit temperature scaling on val and put it inside the graph (model.json output.calibration).")  # fmt: skip
    p.add_argument("--threshold_cost", type=str | None, default=None, help="Binary classifiers: FP,FN costs; the decision threshold of least cost on val (model.json output.decision).")  # fmt: skip
    p.add_argument("--target_precision", type=float | None, default=None, help="Binary classifiers: the decision threshold reaching this precision on val, with the highest recall.")  # fmt: skip
    p.add_argument("--target_recall", type=float | None, default=None, help="Binary classifiers: the decision threshold reaching this recall on val, with the highest precision.")  # fmt: skip
    p.add_argument("--positive_class", type=str | None, default=None, help="Binary classifiers: the class the threshold is on (default: the second of class_names).")  # fmt: skip
    return p


@main_guard
def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parser().parse(argv).as_dict()
    from mlcycle.export.run_export import ExportOptions, export_run

    args.pop("config", None)
    return export_run(ExportOptions(**args))
