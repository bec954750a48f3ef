"""Batch prediction into the prediction store: predict.py's ``--db``, ``--skip-predicted`` and
``--query``. With these, ``predict.py`` is the job that sends new data to the model from cron:

    python scripts/predict.py RUN/export/model.onnx /data/incoming --db sqlite:///preds.db --skip-predicted

A recorded image is a row with the columns the server writes: its statistics, and what its
output form keeps of the answer (``Form.stored``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image

from mlcycle.core.errors import UserError
from mlcycle.core.hashing import file_sha256
from mlcycle.edge.decode import load_image
from mlcycle.edge.form import Form
from mlcycle.edge.forms import form_for
from mlcycle.edge.model import UsageError
from mlcycle.serve.stats import image_stats
from mlcycle.serve.store import PredictionStore, features_row, one_line, prediction_row, shown_url


class BatchError(UsageError):
    """A bad --db or --query: predict.py prints it as one ``error:`` line, exit 2."""


def query_paths(query: str | None, url: str | None) -> list[Path]:
    """The ``path`` column of a SQL query (relative paths are taken from the current folder)."""
    if not query or not url:
        raise BatchError("--query and --query-url go together")
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(url)
        with engine.connect() as connection:
            result = connection.execute(sa.text(query))
            if "path" not in result.keys():
                raise BatchError(f"--query returns no 'path' column (it has {list(result.keys())})")
            paths = [Path(str(row.path)) for row in result if row.path]
        engine.dispose()
    except sa.exc.SQLAlchemyError as exc:
        reason = " ".join(str(exc.orig if hasattr(exc, "orig") else exc).split())
        raise BatchError(f"--query failed on {url}: {reason}") from exc
    return paths


def image_row(
    path: Path, form: Form, result: dict[str, Any], channels: int, **columns: Any
) -> dict[str, Any]:
    """The store row of one predicted image file (statistics of the image as decoded for the
    model, and what its form keeps of ``result``)."""
    image = load_image(path, channels)
    with Image.open(path) as img:
        mode = img.mode
    predicted, confidence, top_k = form.stored(result)
    height, width = image.shape[:2]
    return prediction_row(
        input_name=str(path),
        input_sha256=file_sha256(path),
        width=width,
        height=height,
        mode=mode,
        predicted=predicted,
        confidence=confidence,
        top_k=json.loads(json.dumps(top_k)) if top_k is not None else None,
        **image_stats(image),
        **columns,
    )


class Recorder:
    """Rows for a prediction store, written by its background writer; ``close`` drains it."""

    def __init__(self, url: str, model_path: Path, meta: dict[str, Any]) -> None:
        import sqlalchemy as sa

        try:
            self.store = PredictionStore(url).start()
        except UserError as exc:  # names the URL, its password hidden
            raise BatchError(f"--db: {exc}") from exc
        except (sa.exc.SQLAlchemyError, sa.exc.ArgumentError) as exc:
            raise BatchError(f"--db {shown_url(url)}: {one_line(exc)}") from exc
        self.version = file_sha256(model_path)
        self.form = form_for(meta)
        self.channels = int(meta["input"].get("channels") or 3)  # images only
        self.recorded = 0

    def unpredicted(self, paths: list[Path]) -> tuple[list[Path], int]:
        """The paths whose content this model version has not predicted yet, and how many not."""
        hashes = {p: file_sha256(p) for p in paths if p.is_file()}
        done = self.store.predicted_hashes(self.version, sorted(set(hashes.values())))
        keep = [p for p in paths if hashes.get(p) not in done]
        return keep, len(paths) - len(keep)

    def record(self, result: dict[str, Any], latency_ms: float) -> str:
        row = image_row(
            Path(result["path"]),
            self.form,
            result,
            self.channels,
            model_version=self.version,
            source="batch",
            latency_ms=round(latency_ms, 3),
        )
        self.store.add(row)
        self.recorded += 1
        return row["id"]

    def predicted(self, hashes: list[str]) -> set[str]:
        """Which of these table rows (sha256 of their features) this model version holds."""
        return self.store.predicted_hashes(self.version, sorted(set(hashes)))

    def record_row(self, result: dict[str, Any], inputs: dict[str, Any], latency_ms: float) -> str:
        """One scored table row: its features (``inputs``) and what the form keeps."""
        id_column = self.form.meta["input"].get("id_column")
        name = result.get(id_column) if id_column else None
        row = features_row(
            self.form,
            result,
            inputs,
            input_name=str(name or f"row {result['row']}"),
            model_version=self.version,
            source="predict",
            latency_ms=round(latency_ms, 3),
        )
        self.store.add(row)
        self.recorded += 1
        return row["id"]

    def close(self) -> None:
        self.store.close()
