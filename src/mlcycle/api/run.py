"""``mlcycle.Run``: a finished run directory, its numbers and figures, and what comes next
(evaluate, export) through the code evaluate.py and export.py run."""

from __future__ import annotations

import json
import os
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcycle.api.arguments import expect
from mlcycle.api.errors import WrongType, user_errors
from mlcycle.core.errors import UserError
from mlcycle.core.extras import needs_extras
from mlcycle.run.folder import read_run_dir

if TYPE_CHECKING:
    import pandas as pd

SPLITS = ("val", "test")


class Figure(type(Path())):  # type: ignore[misc]
    """A run's figure: a path that a notebook shows as the image (``_repr_png_``)."""

    def _repr_png_(self) -> bytes | None:
        return self.read_bytes() if self.suffix == ".png" and self.is_file() else None


class Run:
    """A run directory written by ``train.py`` (or :func:`mlcycle.train`).

    ``path``; ``config`` (config.yaml); ``metrics`` (metrics.json); ``history`` (history.csv,
    one row per epoch, as a DataFrame); ``figures`` (name -> PNG path, shown inline in a
    notebook). In a notebook the run itself shows its key metrics, the gate and the curves."""

    def __init__(self, path: str | os.PathLike) -> None:
        expect("path", path, (str, os.PathLike), "a run directory")
        self.path, self.config = read_run_dir(path)

    def __repr__(self) -> str:
        return f"Run('{self.path}')"

    def _file(self, name: str) -> Path:
        path = self.path / name
        if not path.is_file():
            raise UserError(f"'{path}' is missing; the run did not finish (train it first)")
        return path

    @property
    def metrics(self) -> dict[str, Any]:
        """metrics.json: the best epoch's numbers, the diagnosis, the gate."""
        return json.loads(self._file("metrics.json").read_text())

    @property
    @needs_extras("Run.history")
    def history(self) -> pd.DataFrame:
        """history.csv: one row per epoch, a column per logged number."""
        import pandas as pd

        return pd.read_csv(self._file("history.csv"))

    @property
    def figures(self) -> dict[str, Figure]:
        """The run's figures (loss_curves, confusion_matrix, misclassified, ...) by name: paths
        that a notebook shows as images (``run.figures["misclassified"]``)."""
        return {p.stem: Figure(p) for p in sorted(self.path.glob("*.png"))}

    @needs_extras("Run.evaluate")
    def evaluate(
        self, split: str = "val", checkpoint: str = "best", batch_size: int | None = None
    ) -> dict[str, Any]:
        """Score the checkpoint on ``split`` as evaluate.py does (eval_<split>.json is written);
        the result's ``gate`` says whether the objective is met, without raising."""
        from mlcycle.evaluators.run_split import evaluate

        expect("split", split, str, "'val' or 'test'")
        expect("checkpoint", checkpoint, str, "'best' or 'last'")
        if batch_size is not None:
            expect("batch_size", batch_size, int, "a positive int or None")
        if split not in SPLITS:
            raise UserError(f"split: '{split}' is not one of {', '.join(SPLITS)}")
        command = f"mlcycle.Run('{self.path}').evaluate('{split}')"
        with user_errors():
            return evaluate(self.path, split, checkpoint, batch_size, command)

    @needs_extras("Run.export")
    def export(
        self, format: str | list[str] | None = None, quantize: str | None = None, **options: Any
    ) -> Path:
        """Export as export.py does (every artifact verified against eager); the export folder.

        ``format``: "onnx", "torchscript" or a list (default both); ``quantize``: None or
        "int8"; ``options``: export.py's other options with underscores (``opset``, ``out``,
        ``force``, ``max_logit_diff``, ...)."""
        from mlcycle.export.run_export import FORMATS, ExportOptions, export_run

        if format is not None:
            expect("format", format, (str, list, tuple), "'onnx', 'torchscript' or a list of them")
        formats = (
            list(FORMATS) if format is None else [format] if isinstance(format, str) else format
        )
        for name in formats:
            expect("format", name, str, "'onnx', 'torchscript' or a list of them")
            if name not in FORMATS:
                raise UserError(f"format: '{name}' is not one of {', '.join(FORMATS)}")
        if quantize not in (None, "int8"):
            raise UserError(f"quantize: '{quantize}' is not None or 'int8'")
        known = {f.name for f in fields(ExportOptions)} - {"run", "format", "quantize"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise WrongType(
                f"Run.export() got an unknown option '{unknown[0]}'; options: {', '.join(sorted(known))}"
            )
        with user_errors():
            done = export_run(
                ExportOptions(run=str(self.path), format=formats, quantize=quantize, **options)
            )
        return Path(done["out"])

    def _repr_html_(self) -> str:
        """The run in a notebook: the best epoch's metrics, the gate, the diagnosis, the curves
        and the names of the other figures."""
        from mlcycle.core.html import render

        metrics = self.metrics if (self.path / "metrics.json").is_file() else {}
        rows = [
            (k, v)
            for k, v in metrics.items()
            if k.startswith(("val/", "train/loss")) and k.count("/") == 1 and isinstance(v, float)
        ]
        figures = self.figures
        return render(
            "api/run.html",
            path=str(self.path),
            status=metrics.get("status", "not finished"),
            best_epoch=metrics.get("best_epoch"),
            epochs=metrics.get("epochs"),
            wall_time_s=metrics.get("wall_time_s"),
            device=metrics.get("device"),
            monitor=metrics.get("monitor"),
            rows=rows,
            gate=metrics.get("gate"),
            diagnosis=metrics.get("diagnosis") or [],
            curves=figures.pop("loss_curves", None),
            figures=sorted(figures),
        )
