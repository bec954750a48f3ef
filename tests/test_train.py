"""Real Lightning runs on tiny generated image folders: the run directory, resume, precision."""

from __future__ import annotations

import csv
import json

import pytest
import torch
import yaml
from conftest import run_train, tree_digest
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.data import DataLoader, TensorDataset

from mlcycle.callbacks import FiniteLossGuard, NonFiniteLoss


def test_run_directory_holds_the_record(image_folder, tmp_path, capsys):
    before = tree_digest(image_folder)
    run = run_train(
        image_folder, tmp_path / "run", "--trainer.max_epochs=2", "--model.class_weights=balanced"
    )
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == f"run directory: {run}"
    for name in (
        "config.yaml",
        "metrics.json",
        "splits.csv",
        "skipped_files.csv",
        "data.json",
        "history.csv",
        "misclassified.png",
        "confusion_matrix.png",
        "loss_curves.png",
        "checkpoints/best.ckpt",
        "checkpoints/last.ckpt",
    ):
        assert (run / name).is_file(), name
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    scalars, images = set(events.Tags()["scalars"]), set(events.Tags()["images"])
    assert {"train/loss", "val/loss", "val/f1", "curves/train_loss", "curves/val_error"} <= scalars
    assert {"val/confusion_matrix", "val/misclassified"} <= images
    assert [e.step for e in events.Scalars("curves/val_loss")] == [1, 2]
    metrics = json.loads((run / "metrics.json").read_text())
    for key in (
        "val/f1",
        "val/acc",
        "val/precision",
        "val/recall",
        "val/loss",
        "train/loss",
        "val/f1/blob",
    ):
        assert 0 <= metrics[key] <= 10, key
    assert metrics["epochs"] == 2 and metrics["seed"] == 42 and metrics["status"] == "finished"
    assert metrics["versions"]["torch"] == torch.__version__.split("+")[0]
    assert metrics["precision"] == "32-true" and len(metrics["data_fingerprint"]) == 64
    # The test split exists, is recorded, and training never looked at it.
    with (run / "splits.csv").open() as fh:
        splits = [row["split"] for row in csv.DictReader(fh)]
    assert splits.count("test") >= 3 and splits.count("val") >= 3 and len(splits) == 36
    assert (run / "data_manifest.csv").read_text().count("\n") == 37
    header = (run / "history.csv").read_text().splitlines()[0]
    assert "test/" not in header and "val/f1" in header
    assert tree_digest(image_folder) == before


def test_resume_continues_where_the_run_stopped(image_folder, tmp_path):
    run = run_train(
        image_folder, tmp_path / "run", "--trainer.max_epochs=1", "--model.scheduler=onecycle"
    )
    first = torch.load(run / "checkpoints/last.ckpt", weights_only=False)
    # Resume from the run's own config (it names its run_dir), training longer than planned.
    from mlcycle.commands.train import main

    main(["--config", str(run / "config.yaml"), "--trainer.max_epochs=3", "--ckpt_path=last"])
    last = torch.load(run / "checkpoints/last.ckpt", weights_only=False)
    assert first["epoch"] == 0
    assert last["global_step"] == 3 * first["global_step"], (
        first["global_step"],
        last["global_step"],
        first["epoch"],
        last["epoch"],
    )
    history = (run / "history.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in history[1:]] == ["1", "2", "3"]
    assert json.loads((run / "metrics.json").read_text())["resumed_from"] == "last"


def test_same_seed_same_run(image_folder, tmp_path):
    a = run_train(image_folder, tmp_path / "a", "--trainer.max_epochs=2")
    b = run_train(image_folder, tmp_path / "b", "--trainer.max_epochs=2")
    assert (a / "history.csv").read_text() == (b / "history.csv").read_text()
    assert (
        json.loads((a / "metrics.json").read_text())["data_fingerprint"]
        == json.loads((b / "metrics.json").read_text())["data_fingerprint"]
    )


def test_resuming_on_changed_data_stops_unless_allowed(image_folder, tmp_path, capsys):
    run = run_train(image_folder, tmp_path / "run")
    (image_folder / "blob" / "blob_000.png").unlink()
    (image_folder / "blob" / "blob_001.png").write_bytes(
        (image_folder / "blob" / "blob_002.png").read_bytes()
    )
    with pytest.raises(SystemExit) as exit_info:
        run_train(image_folder, run, "--trainer.max_epochs=2", "--ckpt_path=last")
    assert exit_info.value.code == 2
    assert (
        "data changed since this run started (0 added, 1 removed, 1 modified files)"
        in capsys.readouterr().err
    )
    run_train(
        image_folder, run, "--trainer.max_epochs=2", "--ckpt_path=last", "--data.allow_changed=true"
    )
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 2


def test_a_finished_run_is_not_overwritten(image_folder, tmp_path, capsys):
    run = run_train(image_folder, tmp_path / "run")
    stamp = (run / "checkpoints/last.ckpt").stat().st_mtime_ns
    with pytest.raises(SystemExit) as exit_info:
        run_train(image_folder, run)
    assert exit_info.value.code == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (run / "checkpoints/last.ckpt").stat().st_mtime_ns == stamp


def test_bf16_mixed_on_cpu(image_folder, tmp_path):
    run = run_train(
        image_folder,
        tmp_path / "run",
        "--trainer.precision=bf16-mixed",
        "--trainer.accelerator=cpu",
    )
    assert json.loads((run / "metrics.json").read_text())["precision"] == "bf16-mixed"


def test_16_mixed_without_cuda_is_refused(image_folder, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(SystemExit) as exit_info:
        run_train(image_folder, tmp_path / "run", "--trainer.precision=16-mixed")
    assert exit_info.value.code == 2 and "bf16-mixed" in capsys.readouterr().err


def test_learns_the_tiny_patterns(image_folder, tmp_path):
    run = run_train(image_folder, tmp_path / "run", "--trainer.max_epochs=6", "--model.lr=0.01")
    assert json.loads((run / "metrics.json").read_text())["val/f1"] >= 0.8


class Exploding(LightningModule):
    """Finite loss in the first epoch, NaN in the second."""

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch[0]).pow(2).mean()
        return loss * float("nan") if self.current_epoch == 1 else loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    loader = DataLoader(TensorDataset(torch.randn(8, 2)), batch_size=4)
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "checkpoints", save_last=True)
    trainer = Trainer(
        max_epochs=3,
        callbacks=[checkpoint, FiniteLossGuard()],
        default_root_dir=tmp_path,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    with pytest.raises(NonFiniteLoss, match="loss became nan at epoch 1"):
        trainer.fit(Exploding(), loader)
    saved = torch.load(tmp_path / "checkpoints/last.ckpt", weights_only=False)
    assert saved["epoch"] == 0
    assert all(torch.isfinite(v).all() for v in saved["state_dict"].values())


INTEGER_LIMITS = (
    "limit_train_batches",
    "limit_val_batches",
    "limit_test_batches",
    "limit_predict_batches",
    "overfit_batches",
    "val_check_interval",
    "check_val_every_n_epoch",
)


def resolved_trainer(capsys, *args: str) -> dict:
    from mlcycle.commands.train import main

    with pytest.raises(SystemExit):
        main(["--config", "configs/quickstart.yaml", *args, "--print_config"])
    return yaml.safe_load(capsys.readouterr().out)["trainer"]


@pytest.mark.parametrize("key", INTEGER_LIMITS)
def test_integer_limits_stay_integers_from_the_command_line_and_yaml(key, tmp_path, capsys):
    """Lightning reads an int as a number of batches and a float as a fraction; a union that
    typing cached as float-first used to turn 1 into 1.0 (all batches)."""
    value = resolved_trainer(capsys, f"--trainer.{key}=1")[key]
    assert value == 1 and type(value) is int
    extra = tmp_path / "limits.yaml"
    extra.write_text(f"trainer:\n  {key}: 2\n")
    value = resolved_trainer(capsys, "--config", str(extra))[key]
    assert value == 2 and type(value) is int
    if key != "check_val_every_n_epoch":  # epochs: an int only
        value = resolved_trainer(capsys, f"--trainer.{key}=1.0")[key]
        assert value == 1.0 and type(value) is float


def test_limit_train_batches_1_is_one_batch_and_1_0_all(image_folder, tmp_path):
    one = run_train(
        image_folder, tmp_path / "one", "--trainer.max_epochs=2", "--trainer.limit_train_batches=1"
    )
    everything = run_train(
        image_folder,
        tmp_path / "all",
        "--trainer.max_epochs=2",
        "--trainer.limit_train_batches=1.0",
    )
    steps = {
        name: torch.load(run / "checkpoints/last.ckpt", weights_only=False)["global_step"]
        for name, run in (("one", one), ("all", everything))
    }
    with (everything / "splits.csv").open() as fh:
        train = sum(row["split"] == "train" for row in csv.DictReader(fh))
    assert steps == {"one": 2, "all": 2 * (train // 8)} and train // 8 > 1
    config = yaml.safe_load((one / "config.yaml").read_text())
    assert config["trainer"]["limit_train_batches"] == 1
