"""What a run hands each kind of Lightning logger besides what Lightning logs itself.

Lightning logs the per-step and per-epoch metrics to every logger. A :class:`LoggerPart`,
registered under the logger's class name (a subclass finds its base's part), adds the rest:
when the fit starts, the resolved config (``config.yaml``, flattened) as params and, in the run's
``tracking.json``, what export and retrain need to find the run again
(:mod:`mlcycle.run.tracking`); when ``metrics.json`` is written, its values and the run
directory's figures. A logger without a part (TensorBoard, which gets the figures per epoch from
``reports/figure_worker``; CSV) gets what Lightning gives it. The run directory is the same
whichever loggers run.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlcycle.core.errors import UserError
from mlcycle.core.registry import Registry
from mlcycle.run.tracking import (
    absolute_uri,
    final_metrics,
    flat_params,
    guarded,
    log_params,
    log_run_record,
)
from mlcycle.run.tracking import record_tracking as keep


class LoggerPart:
    """One kind of logger's part; the base adds nothing."""

    package: str | None = None  # the module the logger needs, checked before anything runs
    install: str = ""  # what to install when it is missing
    tracker = ""  # its key in tracking.json

    def record(self, logger: Any, name: str) -> dict[str, Any] | None:
        """What ``tracking.json`` keeps for this logger (``name``: the run's), or None."""
        return None

    def opened(self, logger: Any, params: dict[str, str]) -> None:
        """Log the config, flattened (``params``)."""

    def closed(self, logger: Any, run_dir: Path, metrics: dict[str, Any]) -> None:
        """Log ``metrics.json``'s values and the run directory's figures."""

    def where(self, logger: Any) -> str | None:
        """Where the run can be watched, for train's closing line; None: Lightning's folder."""
        return None


LOGGER_PARTS: Registry[type[LoggerPart]] = Registry(
    "logger part", "trainer.logger", "mlcycle.logger_parts"
)


@LOGGER_PARTS.register("MLFlowLogger")
class MlflowPart(LoggerPart):
    """MLflow: params, ``final/<key>`` metrics, the figures as artifacts under ``figures/``;
    ``tracking.json`` keeps the tracking URI, the run id and the model's name."""

    package = "mlflow"
    install = "pip install 'mlcycle[mlflow]' (or mlflow-skinny)"
    tracker = "mlflow"

    def record(self, logger: Any, name: str) -> dict[str, Any]:
        return {
            "tracking_uri": absolute_uri(logger.experiment.tracking_uri),
            "experiment_id": logger.experiment_id,
            "run_id": logger.run_id,
            "model_name": name,
        }

    def opened(self, logger: Any, params: dict[str, str]) -> None:
        log_params(logger.experiment, logger.run_id, params)

    def closed(self, logger: Any, run_dir: Path, metrics: dict[str, Any]) -> None:
        log_run_record(logger.experiment, logger.run_id, run_dir, metrics)

    def where(self, logger: Any) -> str | None:
        uri = absolute_uri(logger.experiment.tracking_uri)
        return f"MLflow run {logger.run_id} in {uri} (mlflow ui --backend-store-uri {uri})"


@LOGGER_PARTS.register("WandbLogger")
class WandbPart(LoggerPart):
    """Weights & Biases: params in the run's config, ``final/<key>`` in its summary, each
    figure through ``WandbLogger.log_image`` under ``figures/<name>``."""

    package = "wandb"
    install = "pip install wandb"
    tracker = "wandb"

    def record(self, logger: Any, name: str) -> dict[str, Any]:
        run = logger.experiment
        return {"project": run.project, "run_id": run.id, "url": run.url}

    def opened(self, logger: Any, params: dict[str, str]) -> None:
        logger.experiment.config.update(params, allow_val_change=True)

    def closed(self, logger: Any, run_dir: Path, metrics: dict[str, Any]) -> None:
        logger.experiment.summary.update(final_metrics(metrics))
        for path in sorted(Path(run_dir).glob("*.png")):
            logger.log_image(key=f"figures/{path.stem}", images=[str(path)])


def part_of(logger: Any) -> LoggerPart | None:
    """The part registered for ``logger``'s class or the nearest base class; None for none."""
    for cls in type(logger).__mro__:
        if cls.__name__ in LOGGER_PARTS:
            return LOGGER_PARTS.get(cls.__name__)()
    return None


def check_installed(given: Any) -> None:
    """A config that names a logger whose package is missing: one line naming what to
    install, before the data is read (Lightning's own error is a traceback)."""
    for class_path in _class_paths(given):
        name = class_path.rpartition(".")[2]
        if name not in LOGGER_PARTS:
            continue
        part = LOGGER_PARTS.get(name)
        if part.package and importlib.util.find_spec(part.package) is None:
            raise UserError(
                f"trainer.logger {name} needs the {part.package} package: {part.install}"
            )


def opened(loggers: list[Any], run_dir: Path, name: str) -> None:
    """At the fit's start (``config.yaml`` written): each logger's part logs the config."""
    parts = [(logger, part) for logger in loggers if (part := part_of(logger)) is not None]
    if not parts:
        return
    import yaml

    config = yaml.safe_load((Path(run_dir) / "config.yaml").read_text()) or {}
    params = flat_params(config)
    params.pop("ckpt_path", None)  # 'last' on a resume; an MLflow param never changes
    for logger, part in parts:
        record = guarded(part.tracker, part.record, (logger, name), None)
        if record:
            keep(run_dir, part.tracker, record)
        guarded(part.tracker, part.opened, (logger, params), None)


def closed(loggers: list[Any], run_dir: Path, metrics: dict[str, Any]) -> None:
    """Once ``metrics.json`` is written (also after a failed fit): its values and the figures."""
    for logger in loggers:
        part = part_of(logger)
        if part is not None:
            guarded(part.tracker, part.closed, (logger, run_dir, metrics), None)


def run_name(datamodule: Any, configs: list[str]) -> str:
    """The run's name, ``<name>`` of ``runs/<name>/<time>``: the data's ``run_name`` (a CSV
    file's stem), else the last config's stem; the registered model's default name."""
    name = getattr(datamodule, "run_name", None) or (Path(configs[-1]).stem if configs else "")
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(name)) or "default"


def _class_paths(given: Any) -> Iterator[str]:
    for item in given if isinstance(given, list) else [given]:
        path = item if isinstance(item, str) else getattr(item, "get", lambda _: None)("class_path")
        if path:
            yield str(path)
