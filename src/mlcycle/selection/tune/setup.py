"""What every trial of a tune study shares: the base train.py arguments and config, the
objective metric and its direction, the folds, and the check of the search space."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from mlcycle.core.errors import UserError
from mlcycle.core.imports import import_object
from mlcycle.selection.compare.comparison import Comparison
from mlcycle.selection.compare.kinds import comparison_kind
from mlcycle.selection.config import build_data, resolve_config
from mlcycle.selection.runs import LOGGERS
from mlcycle.selection.tune.space import Param, overrides, probe_rounds, train_values
from mlcycle.selection.tune.spec import TuneSpec

DUMMY_LINKS = {"num_classes": 2, "in_channels": 3, "class_names": ["a", "b"]}


@contextlib.contextmanager
def captured() -> Any:
    """Hold back what resolving a config prints (Lightning's seed line, parser errors)."""
    levels = {n: logging.getLogger(n).level for n in LOGGERS}
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    text = io.StringIO()
    try:
        with contextlib.redirect_stdout(text), contextlib.redirect_stderr(text):
            yield text
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


class Tuning:
    """The study folder and the train.py arguments of a tune YAML plus forwarded ``extra``."""

    def __init__(self, spec: TuneSpec, out: Path, extra: list[str]) -> None:
        self.spec, self.out, self.extra = spec, out, extra
        self.params: list[Param] = spec.space
        self.base_args = [a for c in spec.train for a in ("--config", c)] + spec.args + extra
        self.config = self.resolve(self.base_args, "the base config")
        self.objective, self.metric, self.direction = self._objective()
        self.split_files: list[Path] = []
        self.fold_digest: str | None = None
        self.kind: type[Comparison] = Comparison  # prepare(): the task's, for k folds

    def resolve(self, args: list[str], what: str) -> dict[str, Any]:
        """train.py's resolved config for ``args``; its one-line error names ``what``."""
        with captured() as text:
            try:
                return resolve_config(args)
            except SystemExit as exc:  # train.py's parser printed one line and exited
                if exc.code in (0, None):
                    raise
                lines = [line for line in text.getvalue().splitlines() if line.strip()]
                message = lines[-1].removeprefix("error: ") if lines else f"exit {exc.code}"
        raise UserError(f"{self.spec.path}: train.py rejects {what}: {message}")

    def _objective(self) -> tuple[Any, str, str]:
        from mlcycle.core.objective import for_monitor
        from mlcycle.selection.scores import objective_of

        kind = comparison_kind(self.config, required=self.spec.folds > 1)
        with captured():  # a kind may read the data to say (val/rmse on a regression target)
            monitor, mode = kind.task_monitor(self.config)
        objective = for_monitor(objective_of(self.spec.objective, self.config), monitor)
        if objective is None:
            return None, monitor, mode
        head, _, rest = objective.metric.partition("/")
        metric = objective.metric if rest else f"val/{objective.metric}"
        if head == "test":
            raise UserError(
                f"{self.spec.path}: objective.metric '{objective.metric}' is on the test split; "
                "tune.py never reads it (use val/...)"
            )
        objective = replace(objective, metric=metric)
        return objective, metric, objective.direction

    def check_space(self) -> None:
        """Resolve train.py's config with every choice and both ends of every range (and build
        the data and model classes from it), so a bad key fails here, not in trial 20."""
        for stored in probe_rounds(self.params):
            values = train_values(self.params, stored)
            config = self.resolve([*self.base_args, *overrides(values)], "the search space")
            what = ", ".join(f"{k}={json.dumps(v)[:40]}" for k, v in stored.items())
            for group in ("data", "model"):
                with captured():
                    try:
                        _build(config[group], DUMMY_LINKS if group == "model" else {})
                    except UserError as exc:
                        raise UserError(f"{self.spec.path}: space ({what}): {exc}") from exc
                    except Exception:  # stand-in class counts may not suit the model
                        pass

    @property
    def last_epoch_step(self) -> int:
        """The step after the last epoch: later folds report their running mean from here."""
        epochs = [self.config["trainer"].get("max_epochs") or 0]
        for p in self.params:
            if p.key == "trainer.max_epochs":
                epochs += [int(c) for c in p.choices] if p.choices else [int(p.high)]
        return max(epochs) if max(epochs) > 0 else 1000

    def prepare(self) -> None:
        """The study folder; for k folds, the fold split files (every worker writes the same)."""
        self.out.mkdir(parents=True, exist_ok=True)
        if self.spec.folds < 2:
            return
        kind = comparison_kind(self.config)  # cut as compare.py cuts the task's data
        with captured():
            data = build_data(self.config)
        pool = kind.build_pool(data, self.spec.folds, self.spec.fold_seed, gap=self.spec.fold_gap)
        scratch = self.out / f".folds-{os.getpid()}"
        (scratch).mkdir(exist_ok=True)
        files = pool.write(scratch, self.spec.folds)
        (self.out / "folds").mkdir(exist_ok=True)
        for file in files:  # a worker may be reading them: replace each file whole
            os.replace(file, self.out / "folds" / file.name)
        for file in (scratch / "folds").glob("*.json"):  # a kind's own (a schema)
            os.replace(file, self.out / "folds" / file.name)
        os.replace(scratch / "folds.csv", self.out / "folds.csv")
        shutil.rmtree(scratch, ignore_errors=True)
        self.split_files = [self.out / "folds" / f.name for f in files]
        self.fold_digest = pool.digest
        self.kind = kind

    def fingerprint(self) -> dict[str, Any]:
        """What every worker of a study must agree on."""
        return {
            "space": [p.describe() for p in self.params],
            "metric": self.metric,
            "direction": self.direction,
            "folds": self.spec.folds,
            "fold_digest": self.fold_digest,
        }

    def run_args(self, values: dict[str, Any], run_dir: Path, fold: int) -> list[str]:
        """train.py's arguments for one trial (and fold)."""
        args = [*self.base_args, *overrides(values)]
        if self.split_files:  # the fold's val rows are the scored ones, as in compare.py
            args.append(f"--data.split_file={self.split_files[fold]}")
            args += self.kind.fold_run_args(self.resolve(args, "the trial's parameters"))
        return [
            *args,
            f"--run_dir={run_dir}",
            "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false",
        ]

    def best_config(self, values: dict[str, Any]) -> dict[str, Any]:
        """A config train.py takes as it is: the base config with ``values`` applied."""
        config = self.resolve([*self.base_args, *overrides(values)], "the best parameters")
        config["run_dir"] = config["ckpt_path"] = None
        if self.objective is not None:
            config["objective"] = self.objective.to_dict()
        return config


def _build(section: dict[str, Any], links: dict[str, Any]) -> Any:
    """Build a config section's class; a task without reading any weights: its weights' names
    (and its ``init_from`` run) are checked, their files read only by the trials."""
    from mlcycle.tasks.init_from import check_init_run, restoring

    cls = import_object(section["class_path"], "class")
    kwargs = dict(section.get("init_args") or {})
    kwargs.update({k: v for k, v in links.items() if k in getattr(cls, "linked", ())})
    names = getattr(cls, "weights_preprocessing", None)
    if names is None:
        return cls(**kwargs)
    names(kwargs)  # an unknown architecture or weights tag: one line, nothing downloaded
    check_init_run(kwargs.get("init_from"), cls)
    with restoring():
        return cls(**kwargs)
