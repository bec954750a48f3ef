"""MLflow from the train config: params, metrics and figures at fit time, the exported folder
as a registered model version, retrain's champion alias; a SQL tracking store (a SQLite file in
tmp_path, then a PostgreSQL database: MLflow's SQLAlchemy store, no MLflow server). The run directory gets what it gets with TensorBoard."""

from __future__ import annotations

import json
from importlib.util import find_spec
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import run_train, write_folder

from mlcycle.run.tracking import absolute_uri, flat_params

REPO = Path(__file__).resolve().parents[1]


def mlflow_args(uri: str, store: Path) -> list[str]:
    return [
        "--trainer.logger=lightning.pytorch.loggers.MLFlowLogger",
        f"--trainer.logger.tracking_uri={uri}",
        f"--trainer.logger.artifact_location={store / 'artifacts'}",
        "--trainer.logger.experiment_name=tiny",
    ]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory) -> SimpleNamespace:
    """A champion that barely trained and a challenger that learned, both logged to MLflow;
    the champion exported (model version 1)."""
    pytest.importorskip("mlflow")
    from mlflow import MlflowClient

    from mlcycle.commands.export import main as export

    base = tmp_path_factory.mktemp("mlflow")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(REPO)
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        patch.setenv("MLCYCLE_MODEL_NAME", "shapes")
        data = write_folder(base / "images", per_class=16)
        store = base / "store"
        uri = f"sqlite:///{store / 'mlflow.db'}"
        if request.param == "postgresql":
            uri = request.getfixturevalue("postgres_server").new_database()
        champion = run_train(
            data,
            base / "champion",
            *mlflow_args(uri, store),
            "--trainer.max_epochs=1",
            "--model.lr=1e-5",
        )
        export(["--run", str(champion), "--format", "onnx", "--force"])
        challenger = run_train(
            data,
            base / "challenger",
            *mlflow_args(uri, store),
            "--trainer.max_epochs=4",
            "--model.lr=0.01",
        )
    client = MlflowClient(uri)
    return SimpleNamespace(
        base=base, champion=champion, challenger=challenger, client=client, uri=uri
    )


def mlflow_record(run: Path) -> dict:
    return json.loads((run / "tracking.json").read_text())["mlflow"]


@pytest.mark.slow  # the module's fixture: two short fits and an export
def test_a_fit_logs_params_metrics_and_figures(world):
    record = mlflow_record(world.champion)
    assert record["tracking_uri"] == world.uri and record["model_name"] == "image_folder"
    logged = world.client.get_run(record["run_id"])
    params, metrics = logged.data.params, logged.data.metrics
    assert params["model.lr"] == "1e-05" and params["trainer.max_epochs"] == "1"
    assert params["data.class_path"].endswith("ImageClassificationData")
    assert "val/f1" in metrics and "train/loss" in metrics  # Lightning's, per epoch
    recorded = json.loads((world.champion / "metrics.json").read_text())
    assert metrics["final/val/f1"] == pytest.approx(recorded["val/f1"])
    assert logged.data.tags["mlcycle.status"] == "finished"
    figures = {Path(a.path).name for a in world.client.list_artifacts(record["run_id"], "figures")}
    assert {"loss_curves.png", "confusion_matrix.png", "misclassified.png"} <= figures
    assert logged.info.status == "FINISHED"
    # the run directory is the one TensorBoard runs get, less the tensorboard folder
    for name in ("config.yaml", "metrics.json", "history.csv", "loss_curves.png"):
        assert (world.champion / name).is_file()
    assert not (world.champion / "tensorboard").exists()


@pytest.mark.slow  # the module's fixture: two short fits and an export
def test_export_registers_a_model_version(world):
    record = mlflow_record(world.champion)
    assert record["registered_model"] == "shapes" and record["model_version"] == "1"
    version = world.client.get_model_version("shapes", "1")
    assert version.run_id == record["run_id"]
    exported = {Path(a.path).name for a in world.client.list_artifacts(record["run_id"], "export")}
    assert {"model.onnx", "model.json"} <= exported


@pytest.mark.slow  # the module's fixture: two short fits and an export
def test_retrain_promotion_moves_the_champion_alias(world, tmp_path, monkeypatch, capsys):
    from mlcycle.commands.retrain import main as retrain

    monkeypatch.setenv("MLCYCLE_MODEL_NAME", "shapes")
    registry = tmp_path / "registry.json"
    retrain(["--champion", str(world.champion), "--registry", str(registry)])
    assert str(world.client.get_model_version_by_alias("shapes", "champion").version) == "1"
    retrain(["--challenger", str(world.challenger), "--registry", str(registry)])
    out = capsys.readouterr().out
    assert "PROMOTED" in out and "mlflow: model 'shapes' @champion -> version 2" in out
    champion = world.client.get_model_version_by_alias("shapes", "champion")
    assert (
        str(champion.version) == "2"
        and champion.run_id == mlflow_record(world.challenger)["run_id"]
    )
    retrain(["--rollback", "--registry", str(registry)])
    assert str(world.client.get_model_version_by_alias("shapes", "champion").version) == "1"


def test_flat_params_use_the_command_lines_keys():
    config = {"model": {"class_path": "T", "init_args": {"lr": 0.1, "arch_options": {}}}}
    config["trainer"] = {"callbacks": [{"class_path": "C"}], "logger": None}
    assert flat_params(config) == {
        "model.class_path": "T",
        "model.lr": "0.1",
        "model.arch_options": "{}",
        "trainer.callbacks": '[{"class_path": "C"}]',
        "trainer.logger": "null",
    }


def test_relative_stores_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert absolute_uri("sqlite:///mlflow.db") == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert absolute_uri("file:./mlruns") == f"file:{tmp_path / 'mlruns'}"
    assert absolute_uri("sqlite:////abs/m.db") == "sqlite:////abs/m.db"
    assert absolute_uri("http://host:5000") == "http://host:5000"


def test_a_logger_whose_package_is_missing_is_one_line(image_folder, tmp_path, capsys):
    if find_spec("wandb") is not None:
        pytest.skip("wandb is installed here")
    with pytest.raises(SystemExit) as exc:
        run_train(
            image_folder, tmp_path / "run", "--trainer.logger=lightning.pytorch.loggers.WandbLogger"
        )
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        "error: trainer.logger WandbLogger needs the wandb package: pip install wandb"
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("logger", ["mlflow", "wandb"])
def test_the_logger_configs_compose_with_a_training_config(logger, capsys):
    import yaml

    from mlcycle.commands.train import main

    given = ["--config", "configs/quickstart.yaml", "--config", f"configs/loggers/{logger}.yaml"]
    with pytest.raises(SystemExit) as exc:
        main([*given, "--print_config"])
    assert exc.value.code in (0, None)
    resolved = yaml.safe_load(capsys.readouterr().out)["trainer"]["logger"]
    assert resolved["class_path"].lower().endswith(f"{logger}logger")
