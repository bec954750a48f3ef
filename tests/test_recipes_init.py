"""``model.init_from``: an earlier run's best checkpoint as the start; mismatched tensors named
and re-initialised; a segmentation backbone from a classifier run; another task refused."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import yaml
from conftest import run_train, write_folder

from mlcycle.core.errors import UserError
from mlcycle.models import build_model
from mlcycle.run.loader import Run
from mlcycle.tasks.classification import ClassificationTask
from mlcycle.tasks.init_from import load_init
from mlcycle.tasks.segmentation import SegmentationTask


def checkpoint_tensors(run) -> dict[str, torch.Tensor]:
    ckpt = torch.load(run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    return {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()}


def test_init_from_loads_equal_layers_and_names_a_new_classifier(trained_run):
    task = ClassificationTask(num_classes=2, in_channels=1, init_from=str(trained_run))
    lines = load_init(task.model, task._init_run)
    source, own = checkpoint_tensors(trained_run), task.model.state_dict()
    for key, value in own.items():
        if key.startswith("features."):
            assert torch.equal(value, source[key]), key
    assert not torch.equal(own["head.2.bias"][:2], source["head.2.bias"][:2])
    assert lines[:2] == [
        "init_from: head.2.weight re-initialised (shape (3, 128) in the run, (2, 128) here)",
        "init_from: head.2.bias re-initialised (shape (3,) in the run, (2,) here)",
    ]
    assert lines[-1].endswith(
        f"{len(own) - 2} of {len(own)} tensors loaded from best.ckpt, 2 re-initialised"
    )


def test_other_classes_of_the_same_count_get_a_new_head(trained_run):
    """Three other classes: every shape fits, yet the head's rows would name the wrong
    classes, so it is not loaded and the line says so; the same classes keep it."""
    source = checkpoint_tensors(trained_run)
    other = ClassificationTask(num_classes=3, in_channels=1, init_from=str(trained_run))
    lines = load_init(other.model, other._init_run, ["cat", "dog", "bird"])
    assert not torch.equal(other.model.state_dict()["head.2.weight"], source["head.2.weight"])
    assert torch.equal(
        other.model.state_dict()["features.0.0.weight"], source["features.0.0.weight"]
    )
    assert "are not this data's: its head (head.2.weight, head.2.bias) re-initialised" in lines[0]
    classes = json.loads((trained_run / "data.json").read_text())["class_names"]
    kept = ClassificationTask(num_classes=3, in_channels=1, init_from=str(trained_run))
    lines = load_init(kept.model, kept._init_run, classes)
    assert torch.equal(kept.model.state_dict()["head.2.weight"], source["head.2.weight"])
    assert lines[-1].endswith(f"{len(source)} of {len(source)} tensors loaded from best.ckpt")


def test_init_from_in_train_py_and_the_run_loads_without_it(trained_run, tmp_path, capsys):
    start = shutil.copytree(trained_run, tmp_path / "start")
    data = write_folder(tmp_path / "two", per_class=8, classes=("stripes_h", "blob"))
    run = run_train(data, tmp_path / "run", f"--model.init_from={start}", "--model.freeze_epochs=1")
    out = capsys.readouterr().out
    assert "init_from: head.2.weight re-initialised" in out
    assert "fine-tuning: epoch 1 trains the head (head) alone; 3 layer group(s) frozen" in out
    shutil.rmtree(start)  # export, evaluate and serve rebuild the task without the start run
    assert Run(run).load_model().hparams.init_from == str(start)


def fake_run(folder, trained_run, class_path: str, state: dict[str, torch.Tensor] | None = None):
    """A run folder whose config.yaml names ``class_path`` (the rest as ``trained_run``'s)."""
    (folder / "checkpoints").mkdir(parents=True)
    config = yaml.safe_load((trained_run / "config.yaml").read_text())
    config["model"]["class_path"] = class_path
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    if state is not None:
        state = {f"model.{k}": v for k, v in state.items()}
        torch.save({"state_dict": state}, folder / "checkpoints" / "best.ckpt")
    return folder


def test_a_segmentation_backbone_from_a_classifier_run(trained_run, tmp_path):
    classifier = build_model("mobilenet_v3_large", 3, 7).state_dict()
    path = "mlcycle.tasks.classification.ClassificationTask"
    start = fake_run(tmp_path / "classifier", trained_run, path, classifier)
    task = SegmentationTask(
        num_classes=3, in_channels=3, arch="lraspp_mobilenet_v3_large", init_from=str(start)
    )
    lines = load_init(task.model, task._init_run)
    backbone = task.model.backbone.state_dict()
    for key, value in classifier.items():
        if key.startswith("features."):
            assert torch.equal(backbone[key.removeprefix("features.")], value), key
    assert len(lines) == 1 and "new to this network kept their initialisation" in lines[0]


def test_init_from_another_task_or_no_run_is_one_line(trained_run, tmp_path, capsys):
    path = "mlcycle.tasks.segmentation.SegmentationTask"
    other = fake_run(tmp_path / "seg", trained_run, path)
    with pytest.raises(UserError, match=r"is a segmentation run on classification data; the "):
        ClassificationTask(num_classes=3, in_channels=1, init_from=str(other))
    with pytest.raises(UserError, match="is not an mlcycle run directory"):
        ClassificationTask(num_classes=3, in_channels=1, init_from=str(tmp_path))
    data = write_folder(tmp_path / "images", per_class=6)
    with pytest.raises(SystemExit) as exit_info:
        run_train(data, tmp_path / "run", f"--model.init_from={other}")
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1
    assert "the classification task starts from runs of: classification" in err[0]
    assert not (tmp_path / "run").exists()
