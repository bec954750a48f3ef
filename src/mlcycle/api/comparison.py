"""``mlcycle.compare``: cross-validate a comparison's candidates as compare.py does; the
leaderboard as a DataFrame."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcycle.api.arguments import expect, override_args
from mlcycle.api.errors import user_errors
from mlcycle.core.errors import UserError
from mlcycle.core.extras import needs_extras

if TYPE_CHECKING:
    import pandas as pd


@needs_extras("mlcycle.compare")
def compare(
    config: str | os.PathLike,
    folds: int | None = None,
    out: str | os.PathLike | None = None,
    only: list[str] | None = None,
    export: bool = False,
    **overrides: Any,
) -> pd.DataFrame:
    """Rank the candidates of the comparison YAML ``config`` on the same folds.

    ``folds``: the number of folds (default: the config's); ``out``: the comparison folder
    (default runs/compare/<config name>); ``only``: candidate names to run; ``overrides``: train.py
    keys for every run and the base data (``data={"root": "..."}``); ``export``: end with the
    comparison's one model exported (compare.py ``--export``). The rows are leaderboard.json's;
    ``attrs["out"]`` is the folder with the report, ``attrs["model"]`` the exported ONNX file
    (with ``export``)."""
    import pandas as pd

    from mlcycle.selection.compare.run import compare as run_compare
    from mlcycle.selection.compare.spec import load_spec

    expect("config", config, (str, os.PathLike), "a comparison YAML file")
    if folds is not None:
        expect("folds", folds, int, "an int")
    if out is not None:
        expect("out", out, (str, os.PathLike), "a folder path")
    expect("export", export, bool, "True or False")
    if only is not None:
        expect("only", only, (list, tuple), "a list of candidate names")
        for name in only:
            expect("only", name, str, "a list of candidate names")
    extra = override_args(overrides)
    with user_errors():
        spec = load_spec(str(config))
        if folds is not None:
            spec.folds = folds
        spec.export = spec.export or export
        if spec.folds < 2:
            raise UserError(f"folds {spec.folds}: cross-validation needs at least 2 folds")
        folder = Path(out) if out else Path("runs") / "compare" / spec.path.stem
        command = f"mlcycle.compare('{config}', folds={spec.folds})"
        summary = run_compare(spec, folder, extra, ",".join(only) if only else None, command)
    board = pd.DataFrame(summary["rows"])
    board.attrs["out"] = folder
    if "final" in summary:
        board.attrs["model"] = Path(summary["final"]["model"])
    return board
