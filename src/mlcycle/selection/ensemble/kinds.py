"""Which kind of ensemble combines a task's runs: a registry keyed by the task's
``task_name``.

A kind is a function ``build(request) -> Path`` that checks the members, fits the combination
on held-out predictions and writes the ensemble's run directory. mlcycle's own register through
entry points in its ``pyproject.toml`` (image classifiers from ``mlcycle.images.selection``,
table runs from ``mlcycle.tables.selection``); a plugin registers its task's in the group
``mlcycle.ensembles`` the same way. ensemble.py picks the kind of the members' task; nothing
here knows a task.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlcycle.core.errors import UserError
from mlcycle.core.registry import Registry
from mlcycle.run.loader import Run
from mlcycle.selection.config import task_name
from mlcycle.selection.ensemble.members import member_runs, read_shortlist

GROUP = "mlcycle.ensembles"


@dataclass
class Request:
    """What ensemble.py was asked: ``runs`` or a ``shortlist``, the method and the output."""

    runs: list[str] | None
    shortlist: Path | None
    method: str  # soft, weighted, stacking or all
    out: str | None
    command: str  # for ensemble.json


ENSEMBLES: Registry[Callable[[Request], Path]] = Registry("kind of ensemble", "task_name", GROUP)


def members_task(request: Request) -> tuple[Run, str]:
    """A member run and the task every member is a run of."""
    if request.shortlist is not None:
        folder = request.shortlist.parent
        document = read_shortlist(request.shortlist)
        runs = [
            r for m in document["members"] if isinstance(m, dict) for r in member_runs(m, folder)
        ]
        if not runs:
            raise UserError(
                f"shortlist '{request.shortlist}' lists no fold runs of any member; only runs "
                "trained by compare.py go into the graph (rerun compare.py)"
            )
        run = Run(runs[0])
        return run, task_name(run.config)
    runs = [Run(p) for p in request.runs or []]
    names = [task_name(run.config) for run in runs]
    for run, name in zip(runs, names, strict=True):
        if name != names[0]:
            raise UserError(
                f"run '{run.path}' holds a '{name}' task, run '{runs[0].path}' a '{names[0]}' "
                "one; ensemble members are runs of one task"
            )
    return runs[0], names[0]


def ensemble(request: Request) -> Path:
    """Build the ensemble with the kind of the members' task; its run directory."""
    run, name = members_task(request)
    if name not in ENSEMBLES:
        raise UserError(
            f"run '{run.path}' holds a {run.config['model']['class_path']} ('{name}' task); "
            f"ensemble.py combines runs of the tasks registered in the entry-point group "
            f"'{GROUP}': {', '.join(ENSEMBLES.names()) or 'none'}"
        )
    return ENSEMBLES.get(name)(request)
