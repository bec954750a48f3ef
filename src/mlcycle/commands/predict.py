"""``scripts/predict.py``: the device predictor (``mlcycle.edge.predict``, which imports nothing
of mlcycle) with what mlcycle adds to it: ``--db`` records every prediction in the prediction
store, ``--query`` takes the images from a database (``mlcycle.serve.batch_jobs``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlcycle.edge.predict import run


def open_recorder(url: str, model_path: Path, meta: dict[str, Any]) -> Any:
    from mlcycle.serve.batch_jobs import Recorder  # SQLAlchemy only when --db is given

    return Recorder(url, model_path, meta)


def read_query(query: str | None, url: str | None) -> list[Path]:
    from mlcycle.serve.batch_jobs import query_paths

    return query_paths(query, url)


def main(argv: list[str] | None = None) -> int:
    """predict.py; its exit code (0 all predicted, 1 some unreadable, 2 bad usage)."""
    return run(argv, open_recorder=open_recorder, read_query=read_query)
