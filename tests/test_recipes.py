"""Fine-tuning recipes on tiny data: freezing (BatchNorm statistics included), discriminative
learning rates, the schedule across the unfreeze, gradient accumulation, the learning-rate
finder on a frozen and an unfrozen model, early stopping and the EMA of the weights."""

from __future__ import annotations

import contextlib
import json

import pytest
import torch
from lightning.pytorch import Callback, LightningDataModule, Trainer
from torch.utils.data import DataLoader, TensorDataset

from mlcycle.callbacks.ema import EMA
from mlcycle.callbacks.finders import find_lr
from mlcycle.callbacks.freeze import FreezeBackbone
from mlcycle.core.errors import UserError
from mlcycle.models import build_architecture, build_model
from mlcycle.models.groups import layer_groups
from mlcycle.models.registry import SEGMENTATION_MODELS
from mlcycle.tasks.base import Task
from mlcycle.tasks.classification import ClassificationTask


class Plain(ClassificationTask):
    """The classification task without its galleries (they need a data module's images);
    records, per training step, whether the first block trains and its BatchNorm's mode."""

    def configure_callbacks(self):
        return Task.configure_callbacks(self)

    def training_step(self, batch, batch_idx):
        first = self.model.features[0]
        self.seen = getattr(self, "seen", [])
        self.seen.append((first[0].weight.requires_grad, first[1].training))
        return super().training_step(batch, batch_idx)


class Tiny(LightningDataModule):
    """24 random 1x16x16 images of 3 classes: 3 batches of 8 per epoch."""

    def __init__(self, n: int = 24, batch_size: int = 8):
        super().__init__()
        self.save_hyperparameters()
        g = torch.Generator().manual_seed(0)
        x = torch.randn(n, 1, 16, 16, generator=g)
        y = torch.arange(n) % 3
        self.data = TensorDataset(x + y.view(-1, 1, 1, 1).float(), y, torch.arange(n))

    def train_dataloader(self):
        return DataLoader(self.data, batch_size=self.hparams.batch_size)

    def val_dataloader(self):
        return DataLoader(self.data, batch_size=self.hparams.batch_size)


def task(**recipe) -> Plain:
    options = {"width": 4, "dropout": 0.0}
    return Plain(num_classes=3, in_channels=1, arch_options=options, lr=0.01, **recipe)


def trainer(epochs: int, callbacks=(), **kwargs) -> Trainer:
    return Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=list(callbacks),
        **kwargs,
    )


class Snapshots(Callback):
    """The network's state at the end of every training epoch, and the lr of each step."""

    def __init__(self):
        self.states, self.lrs = [], []

    def on_train_epoch_end(self, trainer, module):
        self.states.append({k: v.clone() for k, v in module.model.state_dict().items()})

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.lrs.append([g["lr"] for g in trainer.optimizers[0].param_groups])


def test_layer_groups_of_our_torchvision_and_segmentation_networks():
    names = [g.names for g in layer_groups(build_model("resnet18", 3, 5))]
    assert names == [["conv1", "bn1", "layer1"], ["layer2"], ["layer3"], ["layer4"], ["fc"]]
    cnn = [g.names for g in layer_groups(build_model("small_cnn", 1, 3))]
    assert cnn == [["features.0"], ["features.1"], ["features.2"], ["head"]]
    seg = build_architecture(SEGMENTATION_MODELS, "lraspp_mobilenet_v3_large", 3, 4)
    groups = layer_groups(seg)
    assert groups[0].names == ["backbone.0"] and groups[-1].names == ["classifier"]
    ids = [id(p) for g in groups for p in g.parameters()]
    assert len(ids) == len(set(ids)) == len(list(seg.parameters()))


def test_layer_groups_of_a_timm_network_are_timms_own():
    timm = pytest.importorskip("timm")
    groups = layer_groups(timm.create_model("resnet18", pretrained=False, num_classes=3))
    assert [g.names for g in groups][::4] == [["conv1", "bn1"], ["layer4.0", "layer4.1"]]
    assert groups[-1].names == ["fc"] and len(groups) == 6


def test_freeze_epochs_keep_the_backbone_and_its_batchnorm_then_unfreeze():
    model, snaps = task(freeze_epochs=1, lr_decay=0.5, scheduler="onecycle"), Snapshots()
    start = {k: v.clone() for k, v in model.model.state_dict().items()}
    fit = trainer(3, [snaps])
    fit.fit(model, datamodule=Tiny())
    frozen, after = snaps.states[0], snaps.states[1]
    body = [k for k in start if k.startswith("features.")]
    assert any("running_mean" in k for k in body)
    for key in body:  # weights and BatchNorm statistics alike
        assert torch.equal(frozen[key], start[key]), key
    assert not torch.equal(frozen["head.2.weight"], start["head.2.weight"])
    assert not torch.equal(after["features.0.0.weight"], frozen["features.0.0.weight"])
    assert not torch.equal(after["features.0.1.running_mean"], frozen["features.0.1.running_mean"])
    assert model.seen[:3] == [(False, False)] * 3 and model.seen[3:] == [(True, True)] * 6
    # Discriminative rates: the head at lr, each group before it halved.
    initial = [g["initial_lr"] for g in fit.optimizers[0].param_groups]
    assert initial == pytest.approx([0.01 * 0.5**k for k in (3, 2, 1, 0)])
    # One-cycle over the 3 frozen steps, then again from its start at the unfreeze (step 3).
    head = [lrs[-1] for lrs in snaps.lrs]
    assert head[0] == pytest.approx(0.01 / 25) and head[3] == pytest.approx(0.01 / 25)
    assert head[1] == head[4] == pytest.approx(0.01)  # each cycle peaks after its rise
    scheduler = fit.lr_scheduler_configs[0].scheduler
    assert scheduler.last_epoch == fit.global_step == 9
    assert scheduler.get_last_lr()[-1] == pytest.approx(0.01 / 250_000, rel=1e-3)
    assert all(p.requires_grad for p in model.parameters())  # released at the end


def test_gradual_unfreeze_opens_one_group_per_epoch_from_the_top():
    groups = layer_groups(build_model("small_cnn", 1, 3))
    freeze = FreezeBackbone(groups, freeze_epochs=1, gradual=True)
    assert [freeze.trainable(e) for e in range(5)] == [1, 2, 3, 4, 4]
    freeze.apply(1)
    flags = [all(p.requires_grad for p in g.parameters()) for g in groups]
    assert flags == [False, False, True, True]
    assert not groups[0].modules[0].training and groups[2].modules[0].training


def test_accumulated_gradients_schedule_counts_optimizer_steps():
    snaps = Snapshots()
    fit = trainer(2, [snaps], accumulate_grad_batches=3)
    fit.fit(task(scheduler="cosine"), datamodule=Tiny(n=48))  # 6 batches, 2 steps per epoch
    scheduler = fit.lr_scheduler_configs[0].scheduler
    assert fit.global_step == scheduler.last_epoch == 4
    # the cosine ended its 4 steps: 1% of lr (counted in batches it would stand near 50%)
    assert scheduler.get_last_lr()[0] == pytest.approx(0.01 * 0.01)


@pytest.mark.parametrize("freeze_epochs", [0, 1])
def test_lr_finder_sweeps_a_frozen_and_an_unfrozen_model(freeze_epochs, tmp_path):
    model = task(freeze_epochs=freeze_epochs)
    fit = trainer(1, default_root_dir=str(tmp_path))
    with contextlib.suppress(UserError):  # 20 steps may give no suggestion: not the point
        find_lr(fit, model, Tiny(n=48), tmp_path, steps=20)
    found = json.loads((tmp_path / "lr_finder.json").read_text())
    assert found["steps"] >= 15
    first_trains = {flags[0] for flags in model.seen}
    if freeze_epochs:
        assert first_trains == {False} and found["trained"].startswith("1 of 4 layer groups")
    else:
        assert first_trains == {True} and found["trained"] == "all layers"
    assert all(p.requires_grad for p in model.parameters())
    assert all(m.training for m in model.model.modules())


def test_early_stopping_stops_at_patience_and_keeps_the_schedule(capsys):
    snaps = Snapshots()
    stop = {"patience": 2.0, "min_delta": 0.0}  # as the CLI parses a YAML mapping
    model = Plain(
        num_classes=3, in_channels=1, arch_options={"width": 4}, lr=1e-9, early_stopping=stop
    )
    fit = trainer(10, [snaps])
    fit.fit(model, datamodule=Tiny())
    # epoch 1 sets the best; epochs 2 and 3 do not beat it: stop after epoch 3
    assert fit.current_epoch == 3 and len(snaps.states) == 3
    assert "stopped after epoch 3 of 10" in capsys.readouterr().out
    factor = fit.lr_scheduler_configs[0].scheduler.get_last_lr()[0] / 1e-9
    assert factor > 0.75  # a 30-step cosine 9 steps in: the stop did not shorten the schedule


def test_recipe_keys_are_checked_in_one_line():
    for bad, message in (
        ({"freeze_epochs": -1}, "model.freeze_epochs=-1"),
        ({"unfreeze": "slowly"}, "model.unfreeze='slowly'"),
        ({"lr_decay": 1.5}, "model.lr_decay=1.5"),
        ({"early_stopping": {"patience": 3, "delta": 1}}, "model.early_stopping takes"),
        ({"early_stopping": 0}, "model.early_stopping.patience=0"),
        ({"ema": 1.0}, "model.ema=1.0"),
    ):
        with pytest.raises(UserError, match=message.replace("(", r"\(")):
            task(**bad)


class Weights(Callback):
    """The weights after every optimizer step."""

    def __init__(self):
        self.steps = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.steps.append({k: v.detach().clone() for k, v in module.named_parameters()})


def test_ema_weights_are_validated_checkpointed_and_kept(tmp_path):
    weights, decay = Weights(), 0.8
    model = task(ema=decay)
    fit = trainer(2, [weights])
    fit.fit(model, datamodule=Tiny())
    assert any(isinstance(c, EMA) for c in fit.callbacks)
    expected = dict(weights.steps[0])  # the first update copies the weights
    for step in weights.steps[1:]:
        expected = {k: decay * expected[k] + (1 - decay) * step[k] for k in step}
    fit.save_checkpoint(tmp_path / "ema.ckpt")
    ckpt = torch.load(tmp_path / "ema.ckpt", map_location="cpu", weights_only=True)
    for key, value in expected.items():
        assert torch.allclose(ckpt["state_dict"][key], value, atol=1e-6), key
        assert torch.allclose(dict(model.named_parameters())[key], value, atol=1e-6), key
    raw = weights.steps[-1]["model.head.2.weight"]
    assert not torch.allclose(ckpt["state_dict"]["model.head.2.weight"], raw, atol=1e-4)


def test_ema_run_exports_and_verifies(tmp_path):
    from export_helpers import export_run, train_run

    run = train_run(tmp_path, 8, "--model.ema=0.9", "--trainer.max_epochs=2")
    ckpt = torch.load(run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    assert "current_model_state" in ckpt  # the raw weights beside the averaged state_dict
    result, _ = export_run(run, "--format", "onnx")
    report = json.loads((run / "export" / "verification.json").read_text())
    assert report["passed"] is True
    assert report["eager"]["macro_f1"] == pytest.approx(report["recorded_val_f1"], abs=1e-4)
