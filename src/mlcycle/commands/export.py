"""``export.py``: TorchScript, ONNX and INT8 ONNX from a run, verified against eager
(:func:`mlcycle.export.run_export.export_run` does the work)."""

from __future__ import annotations

from typing import Any

from mlcycle.commands.guard import ArgParser, main_guard
from mlcycle.export.onnx_export import EXPORTERS
from mlcycle.export.quantize import CALIBRATION_METHODS
from mlcycle.export.run_export import FORMATS, ExportOptions, export_run

DEFAULTS = ExportOptions(run="")


def _tolerances(parser: ArgParser) -> None:
    """How far an artifact may be from the eager model (defaults: ``ExportOptions``'s)."""
    for flag, help_text in (
        ("--max-logit-diff", "FP32 tolerance on logits (classification, segmentation)."),
        (
            "--max-f1-drop",
            "INT8 tolerance: how much val macro F1 (segmentation: mean IoU) may drop; "
            "0.01 = 1 point.",
        ),
        ("--max-box-diff", "Detection: how far (pixels) an artifact's box may be from eager's."),
        ("--max-score-diff", "Detection: how far an artifact's score may be from eager's."),
    ):
        default = getattr(DEFAULTS, flag[2:].replace("-", "_"))
        parser.add_argument(flag, type=float, default=default, help=help_text)


def build_parser() -> ArgParser:
    parser = ArgParser(
        prog="export.py",
        description="Export a trained run to TorchScript and ONNX (optionally INT8) for edge "
        "devices; every artifact is checked against the eager model on the validation images.",
    )
    parser.add_argument("--run", required=True, help="Run directory written by train.py.")
    parser.add_argument(
        "--format", nargs="+", choices=FORMATS, default=DEFAULTS.format, help="Formats to write."
    )
    parser.add_argument("--opset", type=int, default=DEFAULTS.opset, help="ONNX opset version.")
    parser.add_argument(
        "--exporter",
        choices=EXPORTERS,
        default=DEFAULTS.exporter,
        help="torch.onnx exporter: the TorchScript-based one (default) or dynamo (opset >= 18).",
    )
    parser.add_argument("--quantize", choices=["int8"], help="Also write a static INT8 ONNX model.")
    parser.add_argument(
        "--calibration-images",
        type=int,
        default=DEFAULTS.calibration_images,
        help="Training images to calibrate INT8 on.",
    )
    parser.add_argument(
        "--calibration-method",
        choices=list(CALIBRATION_METHODS),
        default=DEFAULTS.calibration_method,
    )
    parser.add_argument("--checkpoint", choices=["best", "last"], default=DEFAULTS.checkpoint)
    parser.add_argument("--out", help="Output folder (default: RUN/export).")
    parser.add_argument(
        "--batch-size", type=int, default=DEFAULTS.batch_size, help="Verification batch size."
    )
    _tolerances(parser)
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


@main_guard
def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    return export_run(ExportOptions(**vars(args)))
