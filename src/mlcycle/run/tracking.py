"""A run's experiment trackers after the fit: ``tracking.json`` in the run directory, and the
seam through which export and retrain reach them.

At fit time the logger parts (:mod:`mlcycle.training.loggers`) write what each tracker needs to
find the run again, one entry per kind::

    {"mlflow": {"tracking_uri": "sqlite:////abs/mlflow.db", "run_id": "...", "model_name": "digits"}}

A :class:`Tracker` registered under that kind is then told when the run was exported
(:func:`exported`: MLflow logs the folder and registers a model version) and when retrain gives
the run a role (:func:`mark`: ``champion`` or ``challenger``, MLflow's model aliases). A kind
without a tracker is left alone, so stages never name a tracker.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from mlcycle.core.record import write_json
from mlcycle.core.registry import Registry

FILE = "tracking.json"
MODEL_NAME_ENV = "MLCYCLE_MODEL_NAME"  # the registered model's name, over the run's name


class Tracker:
    """What a tracker does with a finished run; the base does nothing.

    ``record`` is the tracker's entry in ``tracking.json``; a method returns the entry to keep
    (changed or not) and the line to print, or ``None`` for nothing to say."""

    def adopt(self, run_dir: Path) -> dict[str, Any] | None:
        """An entry for a run the tracker never saw at fit time (e.g. from the environment)."""
        return None

    def exported(
        self, record: dict[str, Any], run_dir: Path, export_dir: Path
    ) -> tuple[dict[str, Any], str | None]:
        return record, None

    def mark(self, record: dict[str, Any], role: str) -> str | None:
        return None


TRACKERS: Registry[type[Tracker]] = Registry(
    "experiment tracker", "tracking.json kind", "mlcycle.trackers"
)


def read_tracking(run_dir: Path) -> dict[str, dict[str, Any]]:
    """``tracking.json`` of ``run_dir``; empty when the run was logged to no tracker."""
    path = Path(run_dir) / FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def record_tracking(run_dir: Path, kind: str, record: dict[str, Any]) -> None:
    """Keep ``record`` as ``kind``'s entry in ``run_dir``'s ``tracking.json``."""
    data = read_tracking(run_dir)
    data[kind] = record
    write_json(Path(run_dir) / FILE, data)


def exported(run_dir: Path, export_dir: Path) -> None:
    """Tell every tracker of ``run_dir`` (recorded, or adopted) that ``export_dir`` was written."""
    for kind, tracker, record in _trackers(run_dir, adopt=True):
        record, line = guarded(
            kind, tracker.exported, (record, run_dir, export_dir), (record, None)
        )
        record_tracking(run_dir, kind, record)
        if line:
            print(line)


def mark(run_dir: Path, role: str) -> None:
    """Tell every tracker of ``run_dir`` that retrain made it the ``role`` (``champion`` or
    ``challenger``)."""
    for kind, tracker, record in _trackers(run_dir, adopt=False):
        line = guarded(kind, tracker.mark, (record, role), None)
        if line:
            print(line)


def _trackers(run_dir: Path, adopt: bool) -> list[tuple[str, Tracker, dict[str, Any]]]:
    recorded = read_tracking(run_dir)
    found = []
    for kind in TRACKERS.names():
        tracker = TRACKERS.get(kind)()
        record = recorded.get(kind)
        if record is None and adopt:
            record = guarded(kind, tracker.adopt, (Path(run_dir),), None)
        if record is not None:
            found.append((kind, tracker, record))
    return found


def guarded(kind: str, call: Any, args: tuple[Any, ...], fallback: Any) -> Any:
    """A tracker that fails (a server down, a package missing) costs a warning, never the
    export or the retrain decision that was already written."""
    try:
        return call(*args)
    except ImportError as exc:
        print(f"warning: {kind}: {exc}", file=sys.stderr)
    except Exception as exc:
        text = " ".join(str(exc).split())[:300]
        print(f"warning: {kind} was not updated: {type(exc).__name__}: {text}", file=sys.stderr)
    return fallback


# --- MLflow --------------------------------------------------------------------------------------

PARAM_CHARS = 500  # every MLflow backend since 1.28 keeps 500 characters of a param's value
RECORD_FILES = ("config.yaml", "metrics.json", "history.csv")
ROLES = ("champion", "challenger")


def absolute_uri(uri: str) -> str:
    """``uri`` with a relative local store made absolute (``sqlite:///mlflow.db``,
    ``file:./mlruns``, ``mlruns``), so export and retrain find it from any folder."""
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return "sqlite:///" + str(Path(uri[len("sqlite:///") :]).resolve())
    if uri.startswith("file:") and not uri.startswith("file:/"):
        return "file:" + str(Path(uri[len("file:") :]).resolve())
    if "://" not in uri and not uri.startswith("file:"):
        return str(Path(uri).resolve())
    return uri


def flat_params(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """The config as MLflow params under the keys a command line uses: ``{"model":
    {"class_path": C, "init_args": {"lr": 0.1}}}`` -> ``{"model.class_path": C, "model.lr":
    "0.1"}``; lists and other values as JSON, at most :data:`PARAM_CHARS` characters."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = prefix if key == "init_args" else f"{prefix}{key}."
        if isinstance(value, dict) and value:
            flat.update(flat_params(value, name))
        else:
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            flat[name.rstrip(".")] = text[:PARAM_CHARS]
    return flat


def log_params(client: Any, run_id: str, params: dict[str, str]) -> None:
    from mlflow.entities import Param

    items = [Param(key, value) for key, value in params.items()]
    for start in range(0, len(items), 100):  # MLflow's most params in one batch
        client.log_batch(run_id, params=items[start : start + 100])


def log_run_record(client: Any, run_id: str, run_dir: Path, metrics: dict[str, Any]) -> int:
    """``metrics.json``'s numbers as ``final/<key>`` metrics, its status as tags, the run's
    figures (``*.png``) under ``figures/`` and its record files under ``run/``; the number of
    figures logged."""
    import time

    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    numbers = [Metric(key, value, now, 0) for key, value in final_metrics(metrics).items()]
    client.log_batch(run_id, metrics=numbers)
    for key in ("status", "learned"):
        if metrics.get(key) is not None:
            client.set_tag(run_id, f"mlcycle.{key}", str(metrics[key]))
    client.set_tag(run_id, "mlcycle.run_dir", str(Path(run_dir).resolve()))
    figures = sorted(Path(run_dir).glob("*.png"))
    for path in figures:
        client.log_artifact(run_id, str(path), "figures")
    for name in RECORD_FILES:
        if (Path(run_dir) / name).is_file():
            client.log_artifact(run_id, str(Path(run_dir) / name), "run")
    return len(figures)


def final_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """``metrics.json``'s numbers (the best epoch's scores, epochs, wall time) as
    ``final/<key>``, beside the per-epoch curves Lightning logs under the bare keys."""
    return {
        f"final/{key}": float(value)
        for key, value in metrics.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and key != "seed"
    }


def mlflow_client(uri: str) -> Any:
    try:
        from mlflow import MlflowClient
    except ImportError as exc:
        raise ImportError(
            "mlflow is not installed; pip install 'mlcycle[mlflow]' (or mlflow-skinny)"
        ) from exc
    return MlflowClient(uri)


@TRACKERS.register("mlflow")
class MlflowTracker(Tracker):
    """MLflow: the export folder as the run's ``export/`` artifacts, registered as a version of
    the model ``MLCYCLE_MODEL_NAME`` (else the name recorded at fit time); retrain's roles as
    the registered model's aliases."""

    def adopt(self, run_dir: Path) -> dict[str, Any] | None:
        """A run trained without MLflow, exported with ``MLFLOW_TRACKING_URI`` set: a new MLflow
        run (experiment ``MLFLOW_EXPERIMENT_NAME``, else ``mlcycle``) gets its record first."""
        uri = os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:
            return None
        import yaml

        client = mlflow_client(uri)
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or "mlcycle"
        known = client.get_experiment_by_name(name)
        experiment = known.experiment_id if known else client.create_experiment(name)
        run_id = client.create_run(experiment, run_name=Path(run_dir).name).info.run_id
        config = yaml.safe_load((Path(run_dir) / "config.yaml").read_text()) or {}
        log_params(client, run_id, flat_params(config))
        metrics_file = Path(run_dir) / "metrics.json"
        metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
        log_run_record(client, run_id, run_dir, metrics)
        client.set_terminated(run_id, "FINISHED")
        model_name = Path(run_dir).resolve().parent.name
        return {"tracking_uri": absolute_uri(uri), "run_id": run_id, "model_name": model_name}

    def exported(
        self, record: dict[str, Any], run_dir: Path, export_dir: Path
    ) -> tuple[dict[str, Any], str | None]:
        client = mlflow_client(record["tracking_uri"])
        run_id = record["run_id"]
        client.log_artifacts(run_id, str(export_dir), "export")
        name = os.environ.get(MODEL_NAME_ENV) or record["model_name"]
        _create_model(client, name)
        source = f"{client.get_run(run_id).info.artifact_uri}/export"
        version = client.create_model_version(name, source, run_id=run_id).version
        record = {**record, "registered_model": name, "model_version": str(version)}
        return record, (
            f"mlflow: logged {export_dir} to run {run_id} and registered it as model "
            f"'{name}' version {version} ({record['tracking_uri']})"
        )

    def mark(self, record: dict[str, Any], role: str) -> str | None:
        if role not in ROLES:
            raise ValueError(f"role '{role}' is not one of {', '.join(ROLES)}")
        name, version = record.get("registered_model"), record.get("model_version")
        if not name or not version:
            return None  # never exported: no model version to point at
        client = mlflow_client(record["tracking_uri"])
        client.set_registered_model_alias(name, role, version)
        if role == "champion":  # the champion is nobody's challenger any more
            from mlflow.exceptions import MlflowException

            try:
                if str(client.get_model_version_by_alias(name, "challenger").version) == version:
                    client.delete_registered_model_alias(name, "challenger")
            except MlflowException:  # no challenger alias: nothing to drop
                pass
        return f"mlflow: model '{name}' @{role} -> version {version}"


def _create_model(client: Any, name: str) -> None:
    """Register the model ``name`` unless it is there already."""
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
