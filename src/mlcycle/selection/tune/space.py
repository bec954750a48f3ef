"""tune.py's search space: each key a train.py dotted key, each value a distribution.

```yaml
space:
  model.lr: {low: 1.0e-4, high: 1.0e-2, log: true}        # float (log scale)
  trainer.max_epochs: {low: 2, high: 8, type: int}        # int (step: optional)
  model.arch: {choices: [small_cnn, resnet18]}            # categorical
  data.train_transforms: {choices: {none: [], flip: [{name: HorizontalFlip, p: 0.5}]}}
```

A categorical given as a mapping has named values: Optuna stores and plots the names (it can
only store numbers, strings, booleans and null), train.py gets the value behind the name.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from mlcycle.core.errors import UserError

KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
# Keys tune.py sets itself for every run.
RESERVED = ("config", "run_dir", "ckpt_path", "data.split_file")
NUMERIC_FIELDS = {"low", "high", "log", "step", "type"}
STORABLE = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class Param:
    """One dimension of the search space."""

    key: str
    kind: str  # "float", "int" or "categorical"
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()  # what Optuna stores: the values, or the names of a mapping
    named: dict[str, Any] = field(default_factory=dict)  # name -> train.py value

    def suggest(self, trial: Any) -> Any:
        """Draw this parameter for ``trial`` (the value Optuna stores)."""
        if self.kind == "categorical":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.kind == "int":
            step = int(self.step or 1)
            return trial.suggest_int(
                self.key, int(self.low), int(self.high), step=step, log=self.log
            )
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)

    def value(self, stored: Any) -> Any:
        """The train.py value of a stored one (a named choice's value)."""
        return self.named[stored] if self.named else stored

    def probe(self, round_: int) -> Any:
        """A stored value to check before any trial: low/high in turn, or every choice."""
        if self.kind == "categorical":
            return self.choices[round_ % len(self.choices)]
        bound = self.low if round_ % 2 == 0 else self.high
        return int(bound) if self.kind == "int" else bound

    def describe(self) -> dict[str, Any]:
        """A plain description (the study records it: every worker must search the same space)."""
        if self.kind == "categorical":
            return {"key": self.key, "choices": list(self.choices), "named": self.named}
        fields_ = {"key": self.key, "type": self.kind, "low": self.low, "high": self.high}
        return {**fields_, "log": self.log, "step": self.step}


def _number(value: Any, where: str, name: str, integer: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UserError(f"{where}: '{name}' must be a number, got {value!r}")
    if integer and not float(value).is_integer():
        raise UserError(f"{where}: '{name}' must be a whole number for type int, got {value!r}")
    return float(value)


def _numeric(key: str, raw: dict[str, Any], where: str) -> Param:
    unknown = sorted(set(raw) - NUMERIC_FIELDS)
    if unknown:
        raise UserError(
            f"{where}: unknown field '{unknown[0]}'; valid fields: {', '.join(sorted(NUMERIC_FIELDS))} (or choices)"
        )
    kind = raw.get("type", "float")
    if kind not in ("float", "int"):
        raise UserError(f"{where}: type is float or int, got {kind!r}")
    if "low" not in raw or "high" not in raw:
        raise UserError(f"{where}: a range needs 'low' and 'high' (or give 'choices')")
    integer = kind == "int"
    low, high = (_number(raw[k], where, k, integer) for k in ("low", "high"))
    if low >= high:
        raise UserError(f"{where}: low ({low:g}) must be below high ({high:g})")
    log = raw.get("log", False)
    if not isinstance(log, bool):
        raise UserError(f"{where}: 'log' is true or false, got {log!r}")
    if log and low <= 0:
        raise UserError(f"{where}: a log scale needs low > 0, got {low:g}")
    step = raw.get("step")
    if step is not None:
        step = _number(step, where, "step", integer)
        if step <= 0 or log:
            raise UserError(f"{where}: 'step' must be above 0 and cannot go with log: true")
    return Param(key, kind, low, high, log, step)


def _categorical(key: str, raw: dict[str, Any], where: str) -> Param:
    if set(raw) != {"choices"}:
        extra = sorted(set(raw) - {"choices"})[0]
        raise UserError(f"{where}: 'choices' takes no other field, got '{extra}'")
    choices = raw["choices"]
    if isinstance(choices, dict):
        if not choices:
            raise UserError(f"{where}: 'choices' is empty")
        names = [str(name) for name in choices]
        return Param(
            key,
            "categorical",
            choices=tuple(names),
            named=dict(zip(names, choices.values(), strict=True)),
        )
    if not isinstance(choices, list) or not choices:
        raise UserError(f"{where}: 'choices' is a non-empty list, or a mapping name -> value")
    odd = next((c for c in choices if not isinstance(c, STORABLE)), None)
    if odd is not None:
        raise UserError(
            f"{where}: choice {json.dumps(odd)} is not a number, string, boolean or null; give "
            "the choices as a mapping name -> value (e.g. {light: [...], strong: [...]})"
        )
    if len({json.dumps(c) for c in choices}) < len(choices):
        raise UserError(f"{where}: 'choices' lists a value twice")
    return Param(key, "categorical", choices=tuple(choices))


def parse_space(raw: Any, where: str) -> list[Param]:
    """The search space of a tune YAML's ``space:`` mapping; errors name the key at fault."""
    if not isinstance(raw, dict) or not raw:
        raise UserError(
            f"{where}: 'space' maps train.py keys to ranges, e.g. model.lr: {{low: 1.0e-4, high: 1.0e-2, log: true}}"
        )
    params = []
    for key, body in raw.items():
        at = f"{where}: space.{key}"
        if not isinstance(key, str) or not KEY.match(key):
            raise UserError(f"{at}: a key is a train.py dotted key such as model.lr")
        if key in RESERVED or key.removesuffix(".init_args") in RESERVED:
            raise UserError(f"{at}: tune.py sets {key} itself for every run")
        if not isinstance(body, dict):
            raise UserError(f"{at}: give {{low: .., high: ..}} or {{choices: [...]}}")
        params.append(_categorical(key, body, at) if "choices" in body else _numeric(key, body, at))
    return params


def encode(value: Any) -> str:
    """``value`` as train.py reads it on the command line (strings as they are, else JSON)."""
    return value if isinstance(value, str) else json.dumps(value)


def overrides(values: dict[str, Any]) -> list[str]:
    """train.py arguments that set ``values`` (train.py key -> value)."""
    return [f"--{key}={encode(value)}" for key, value in values.items()]


def train_values(params: list[Param], stored: dict[str, Any]) -> dict[str, Any]:
    """train.py key -> value for the stored values of a trial (named choices looked up)."""
    by_key = {p.key: p for p in params}
    return {key: by_key[key].value(v) if key in by_key else v for key, v in stored.items()}


def probe_rounds(params: list[Param]) -> list[dict[str, Any]]:
    """Stored values that together visit every choice and both ends of every range."""
    rounds = max([2, *(len(p.choices) for p in params)])
    return [{p.key: p.probe(r) for p in params} for r in range(rounds)]
