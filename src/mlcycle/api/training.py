"""``mlcycle.train``: train one run from its config, as ``train.py`` does."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mlcycle.api.arguments import override_args, paths
from mlcycle.api.errors import user_errors
from mlcycle.api.run import Run
from mlcycle.core.errors import UserError
from mlcycle.core.extras import needs_extras


def train_args(config: str | os.PathLike | list, overrides: dict[str, Any]) -> list[str]:
    """train.py's arguments: ``--config`` per file, then ``--key=value`` per override."""
    args: list[str] = []
    for path in paths("config", config):
        args += ["--config", str(path)]
    return args + override_args(overrides)


@needs_extras("mlcycle.train")
def train(config: str | os.PathLike | list, **overrides: Any) -> Run:
    """Train as ``train.py --config CONFIG ...`` does and return the finished run.

    ``config``: a YAML file or a list of them (composed in order). ``overrides``: any train.py
    key, nested (``trainer={"max_epochs": 3}``) or dotted (``**{"trainer.max_epochs": 3}``);
    ``run_dir="runs/x"`` picks the run directory. Raises :class:`mlcycle.UserError` with the
    message train.py prints."""
    from mlcycle.training import cache
    from mlcycle.training.fit import fit
    from mlcycle.training.precheck import check

    args = train_args(config, overrides)
    with user_errors():
        error = check(args, cache.load().get("schema"))
        if error:
            raise UserError(error)
        run_dir: Path = fit(args).run_dir
    return Run(run_dir)
