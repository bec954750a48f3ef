"""Export a trained run for edge devices: TorchScript, ONNX, INT8 ONNX, with verification."""

from mlcycle.export.onnx_export import DEFAULT_OPSET, export_onnx
from mlcycle.export.quantize import quantize_int8
from mlcycle.export.torchscript import export_torchscript

__all__ = ["DEFAULT_OPSET", "export_onnx", "export_torchscript", "quantize_int8"]
