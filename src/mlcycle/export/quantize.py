"""Static INT8 quantization with ONNX Runtime, calibrated on training images."""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from mlcycle.export.onnx_export import INPUT_NAME, check_onnx

CALIBRATION_METHODS = {
    "minmax": CalibrationMethod.MinMax,
    "percentile": CalibrationMethod.Percentile,
    "entropy": CalibrationMethod.Entropy,
}


class BatchReader(CalibrationDataReader):
    """Feeds float32 NCHW batches to the calibrator, one ``get_next`` call each."""

    def __init__(self, batches: Iterable[np.ndarray], input_name: str = INPUT_NAME) -> None:
        self.input_name = input_name
        self._batches: Iterator[np.ndarray] = iter(batches)
        self.images = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        if batch is None:
            return None
        self.images += len(batch)
        return {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)}


def quantize_int8(
    fp32_path: Path,
    int8_path: Path,
    calibration: Iterable[np.ndarray],
    method: str = "minmax",
) -> int:
    """Write a static INT8 (QDQ, per-channel weights) copy of ``fp32_path``.

    Returns how many calibration images were used. Activations are uint8 and weights int8
    with a reduced 7-bit range, which avoids the U8S8 overflow of x86 CPUs without VNNI.
    """
    reader = BatchReader(calibration)
    quiet = logging.getLogger("root"), logging.getLogger()
    levels = [log.level for log in quiet]
    for log in quiet:
        log.setLevel(logging.ERROR)  # the quantizer logs advice through the root logger
    try:
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prepared = Path(tmp) / "prepared.onnx"
            # Shape inference and graph optimization first, as ORT recommends.
            quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=False)
            quantize_static(
                str(prepared),
                str(int8_path),
                reader,
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                reduce_range=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CALIBRATION_METHODS[method],
            )
    finally:
        for log, level in zip(quiet, levels, strict=True):
            log.setLevel(level)
    check_onnx(int8_path)
    return reader.images
