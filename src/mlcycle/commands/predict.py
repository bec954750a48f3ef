"""``scripts/predict.py``: the device predictor (``mlcycle.edge.predict``, which imports nothing
of mlcycle) with what mlcycle adds to it: ``--db`` records every prediction in the prediction
store, ``--query`` takes the images from a database (``mlcycle.serve.batch_jobs``), and
``--registry WHERE`` predicts with the champion of retrain.py's registry (a JSON file or a
database URL) instead of a model file: ``predict.py --registry URL IMAGES``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from mlcycle.core.errors import UserError
from mlcycle.edge.predict import run


def open_recorder(url: str, model_path: Path, meta: dict[str, Any]) -> Any:
    from mlcycle.serve.batch_jobs import Recorder  # SQLAlchemy only when --db is given

    return Recorder(url, model_path, meta)


def read_query(query: str | None, url: str | None) -> list[Path]:
    from mlcycle.serve.batch_jobs import query_paths

    return query_paths(query, url)


def champion_argv(argv: list[str]) -> list[str]:
    """``argv`` with ``--registry WHERE`` replaced by the champion's model file (the edge
    predictor's first argument), checked against the sha256 the registry recorded."""
    taken = argparse.ArgumentParser(add_help=False)
    taken.add_argument("--registry")
    known, rest = taken.parse_known_args(argv)
    if known.registry is None:
        return argv
    from mlcycle.core.hashing import file_sha256
    from mlcycle.retrain.follow import registry_champion
    from mlcycle.serve.reload import check_registered

    champion = registry_champion(known.registry)()
    version = (champion.registry or {}).get("version")
    if not champion.model.is_file():
        raise UserError(f"the champion v{version}'s model '{champion.model}' does not exist here")
    check_registered(champion, file_sha256(champion.model))
    where = (champion.registry or {}).get("registry")
    print(f"registry {where}: champion v{version}, {champion.model}", file=sys.stderr)
    return [str(champion.model), *rest]


def main(argv: list[str] | None = None) -> int:
    """predict.py; its exit code (0 all predicted, 1 some unreadable, 2 bad usage)."""
    try:
        argv = champion_argv(list(sys.argv[1:] if argv is None else argv))
    except UserError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    return run(argv, open_recorder=open_recorder, read_query=read_query)
