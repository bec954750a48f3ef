"""Train the challenger with train.py, optionally warm-started from the champion's weights."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch

from mlcycle.core.errors import UserError
from mlcycle.core.record import default_run_dir
from mlcycle.run.loader import Run

WARM_START_FILE = "warm_start.pt"


def network_state(run: Run) -> dict[str, torch.Tensor]:
    """The network's state dict (the task's ``model.`` submodule) of ``run``'s best checkpoint:
    what ``--model.weights`` loads."""
    checkpoint = torch.load(run.checkpoint("best"), map_location="cpu", weights_only=True)
    state = {
        key.removeprefix("model."): value
        for key, value in checkpoint.get("state_dict", {}).items()
        if key.startswith("model.")
    }
    if not state:
        raise UserError(
            f"the best checkpoint of '{run.path}' holds no network weights to start from"
        )
    return state


def given(args: list[str], key: str) -> bool:
    """Whether ``--key`` is among train.py's arguments (``--key=v`` or ``--key v``)."""
    return any(a == f"--{key}" or a.startswith(f"--{key}=") for a in args)


def _run_dir(args: list[str], configs: list[str]) -> Path:
    """The challenger's run directory: ``--run_dir`` when given, else train.py's default."""
    for i, arg in enumerate(args):
        if arg.startswith("--run_dir="):
            return Path(arg.split("=", 1)[1])
        if arg == "--run_dir" and i + 1 < len(args):
            return Path(args[i + 1])
    return default_run_dir(configs)


def warm_start_args(champion: Run, run_dir: Path, overrides: list[str]) -> list[str]:
    """Write the champion's network weights into the challenger's run directory and return the
    train.py arguments that start from them.

    The file stays in the run: the challenger's checkpoint names it (``model.weights``) and
    rebuilding the task from the checkpoint reads it again. The champion's normalization is kept
    too (unless given), so the weights see inputs on the scale they were trained on."""
    state = network_state(champion)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / WARM_START_FILE
        torch.save(state, path)
    except OSError as exc:
        raise UserError(f"cannot write '{run_dir / WARM_START_FILE}': {exc.strerror}") from exc
    args = [f"--model.weights={path}"]
    for key in ("mean", "std"):
        if key in champion.data_info and not given(overrides, f"data.{key}"):
            args.append(f"--data.{key}={champion.data_info[key]}")
    return args


def _check_arch(champion: Run, config: dict[str, Any]) -> None:
    """Warn when warm-starting across architectures: only layers of equal shape carry over."""
    theirs = (champion.config["model"].get("init_args") or {}).get("arch")
    ours = (config["model"].get("init_args") or {}).get("arch")
    if theirs != ours:
        print(
            f"warning: --warm-start from a {theirs} champion into a {ours} challenger: only "
            "layers of the same name and shape are taken over",
            file=sys.stderr,
        )


def train_challenger(
    configs: list[str], overrides: list[str], champion: Run | None, warm: bool
) -> Path:
    """Train with ``train.py --config ... <overrides>`` in this process; the run directory."""
    from mlcycle.selection.config import resolve_config
    from mlcycle.training.fit import fit

    args = [a for c in configs for a in ("--config", c)] + list(overrides)
    config = resolve_config(args)  # a bad key stops here, before anything is written
    run_dir = _run_dir(overrides, configs)
    if not given(overrides, "run_dir"):
        args.append(f"--run_dir={run_dir}")
    if warm:
        assert champion is not None
        _check_arch(champion, config)
        if (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").iterdir()):
            raise UserError(
                f"run directory '{run_dir}' already holds a run; choose another --run_dir"
            )
        args += warm_start_args(champion, run_dir, overrides)
    return Path(fit(args).run_dir)
