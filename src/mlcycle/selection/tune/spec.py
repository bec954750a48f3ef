"""A tune YAML: the base training config, the folds, the budget and the search space.

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

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcycle.core.errors import UserError
from mlcycle.core.yaml_files import read_mapping
from mlcycle.selection.keys import check_keys, string_list
from mlcycle.selection.tune.space import Param, parse_space

TOP_KEYS = {
    "train",
    "args",
    "folds",
    "fold_seed",
    "trials",
    "objective",
    "sampler",
    "pruner",
    "space",
}
SAMPLER_KEYS = {"seed", "startup_trials"}
PRUNER_KEYS = {"startup_trials", "warmup_epochs", "percentile"}


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


def _int(raw: dict[str, Any], key: str, default: int | None, least: int, where: str) -> Any:
    value = raw.get(key, default)
    if value is None and default is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise UserError(f"{where}: '{key}' must be a whole number >= {least}, got {value!r}")
    return value


def _section(raw: Any, keys: set[str], where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise UserError(f"{where} is a mapping with keys {', '.join(sorted(keys))}")
    check_keys(set(raw), keys, where)
    return raw


def sampler_of(raw: Any, where: str) -> dict[str, Any]:
    section = _section(raw, SAMPLER_KEYS, f"{where}: sampler")
    return {
        "seed": _int(section, "seed", 42, 0, f"{where}: sampler"),
        "startup_trials": _int(section, "startup_trials", 10, 0, f"{where}: sampler"),
    }


def pruner_of(raw: Any, where: str) -> dict[str, Any] | None:
    if raw is False:
        return None
    at = f"{where}: pruner"
    section = _section(raw, PRUNER_KEYS, at)
    percentile = section.get("percentile", 50.0)
    if (
        isinstance(percentile, bool)
        or not isinstance(percentile, int | float)
        or not 0 < percentile < 100
    ):
        raise UserError(
            f"{at}: 'percentile' is between 0 and 100 (50: the median), got {percentile!r}"
        )
    return {
        "startup_trials": _int(section, "startup_trials", 5, 0, at),
        "warmup_epochs": _int(section, "warmup_epochs", 1, 0, at),
        "percentile": float(percentile),
    }


def load_tune_spec(path: str | Path) -> TuneSpec:
    """Read and check a tune YAML; every message names the key at fault."""
    path = Path(path)
    raw = read_mapping(path, "tune config")
    where = str(path)
    check_keys(set(raw), TOP_KEYS, where)
    train = string_list(raw.get("train"), "train", where)
    if not train:
        raise UserError(f"{where}: 'train' names the train.py config(s) every trial starts from")
    objective = raw.get("objective")
    if objective is not None and not isinstance(objective, dict):
        raise UserError(f"{where}: 'objective' is a mapping such as {{metric: val/f1, min: 0.95}}")
    return TuneSpec(
        path=path,
        train=train,
        args=string_list(raw.get("args"), "args", where),
        folds=_int(raw, "folds", 1, 1, where),
        fold_seed=_int(raw, "fold_seed", 42, 0, where),
        trials=_int(raw, "trials", 20, 1, where),
        objective=objective,
        sampler=sampler_of(raw.get("sampler"), where),
        pruner=pruner_of(raw.get("pruner"), where),
        space=parse_space(raw.get("space"), where),
    )
