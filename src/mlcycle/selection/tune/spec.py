"""A tune YAML: the base training config, the folds, the budget and the search space; typed
keys that jsonargparse checks (``mlcycle tune --config FILE`` reads it as its own config file).

```yaml
train: [configs/quickstart.yaml]   # train.py config file(s)
args: [--trainer.max_epochs=4]     # train.py arguments for every trial
folds: 1                           # 1: the config's train/val split; k >= 2: k-fold mean
trials: 20                         # COMPLETE + PRUNED trials, all workers together
objective: {metric: val/f1}        # optional; else the base config's; metric: the task's monitor
sampler: {seed: 42}                # TPE
pruner: {warmup_epochs: 1}         # median pruner; false: no pruning
space: {model.lr: {low: 1.0e-4, high: 1.0e-2, log: true}}
```
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from jsonargparse import ArgumentParser, Namespace

from mlcycle.core.errors import UserError
from mlcycle.core.keys import parse_yaml_keys, string_list
from mlcycle.selection.executors import ExecutorSettings, add_executor_arguments, settings_of
from mlcycle.selection.tune.space import Param, parse_space


@dataclass
class Sampler:
    """TPE.

    Args:
        seed: the sampler's seed
        startup_trials: random trials before TPE
    """

    seed: int = 42
    startup_trials: int = 10


@dataclass
class Pruner:
    """The median pruner.

    Args:
        startup_trials: trials that are never pruned
        warmup_epochs: epochs of a trial before it may be pruned
        percentile: prune below this percentile of the others (50: the median)
    """

    startup_trials: int = 5
    warmup_epochs: int = 1
    percentile: float = 50.0


@dataclass
class TuneSpec:
    path: Path
    train: list[str]
    args: list[str]
    folds: int
    fold_seed: int
    trials: int
    objective: dict[str, Any] | None
    sampler: dict[str, Any]  # seed, startup_trials
    pruner: dict[str, Any] | None  # startup_trials, warmup_epochs, percentile; None: no pruning
    space: list[Param]
    fold_gap: int = 0  # time folds: rows left out between a fold's training and val rows
    executor: ExecutorSettings = field(default_factory=ExecutorSettings)  # --executor ray


def add_arguments(parser: ArgumentParser) -> None:
    """The tune YAML's keys, as options of ``parser`` (and keys of its config file)."""
    parser.add_argument("--train", type=list[str] | str, default=[], help="train.py config file(s) every trial starts from")  # fmt: skip
    parser.add_argument("--args", type=list[str] | str, default=[], help="train.py arguments for every trial")  # fmt: skip
    parser.add_argument("--folds", type=int, default=1, help="1: the config's train/val split; k >= 2: the k-fold mean")  # fmt: skip
    parser.add_argument("--fold_seed", type=int, default=42, help="seed of the fold assignment")
    parser.add_argument("--fold_gap", type=int, default=0, help="time-ordered folds (data.time_column): rows left out between each fold's training rows and its validation rows")  # fmt: skip
    parser.add_argument("--trials", type=int, default=20, help="COMPLETE+PRUNED trials of the whole study, all workers together")  # fmt: skip
    parser.add_argument("--objective", type=dict[str, Any] | None, default=None, help="e.g. {metric: val/f1} (default: the base config's)")  # fmt: skip
    parser.add_argument("--sampler", type=Sampler, default=Sampler())
    parser.add_argument("--pruner", type=Pruner | bool, default=True, help="the median pruner's settings; false: no pruning")  # fmt: skip
    add_executor_arguments(parser)
    parser.add_argument("--space", type=dict[str, dict[str, Any]], default={}, help="train.py key -> {low, high, log, step, type} or {choices: [...]}")  # fmt: skip


def _at_least(values: dict[str, Any], least: dict[str, int], where: str) -> None:
    for key, low in least.items():
        if values[key] < low:
            raise UserError(f"{where}'{key}' must be a whole number >= {low}, got {values[key]!r}")


def pruner_of(raw: Any, where: str) -> dict[str, Any] | None:
    if raw is False:
        return None
    pruner = asdict(Pruner()) if raw is True else dict(raw)
    _at_least(pruner, {"startup_trials": 0, "warmup_epochs": 0}, f"{where}: pruner: ")
    if not 0 < pruner["percentile"] < 100:
        raise UserError(
            f"{where}: pruner: 'percentile' is between 0 and 100 (50: the median), got {pruner['percentile']!r}"
        )
    return {**pruner, "percentile": float(pruner["percentile"])}


def spec_of(cfg: Namespace, path: Path) -> TuneSpec:
    """The tune spec of parsed keys, checked; every message names the key at fault."""
    where = str(path)
    train = string_list(cfg.train, "train", where)
    if not train:
        raise UserError(f"{where}: 'train' names the train.py config(s) every trial starts from")
    _at_least(dict(cfg), {"folds": 1, "fold_seed": 0, "fold_gap": 0, "trials": 1}, f"{where}: ")
    sampler = dict(cfg.sampler)
    _at_least(sampler, {"seed": 0, "startup_trials": 0}, f"{where}: sampler: ")
    return TuneSpec(
        path=path,
        train=train,
        args=string_list(cfg.args, "args", where),
        folds=cfg.folds,
        fold_seed=cfg.fold_seed,
        trials=cfg.trials,
        objective=cfg.objective,
        sampler=sampler,
        pruner=pruner_of(cfg.pruner, where),
        space=parse_space(cfg.space, where),
        fold_gap=cfg.fold_gap,
        executor=settings_of(cfg),
    )


def load_tune_spec(path: str | Path) -> TuneSpec:
    """Read and check a tune YAML; every message names the key at fault."""
    path = Path(path)
    return spec_of(parse_yaml_keys(path, "tune config", add_arguments), path)
