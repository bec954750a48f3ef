"""Every registered task keeps the contract of ``mlcycle.tasks.base.Task``: a new task (a file in
``mlcycle/tasks`` or a plugin) is covered here with no new test code."""

from __future__ import annotations

import inspect
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from jsonargparse import ArgumentParser

from mlcycle.evaluators import EVALUATORS, evaluator_for
from mlcycle.export.exporters import EXPORTS
from mlcycle.tasks.base import TASKS, Monitor, Task

NAMES = TASKS.names()
LINKED = {"num_classes": 3, "in_channels": 3, "class_names": ["a", "b", "c"]}


def init_args(cls: type[Task]) -> list[str]:
    """Every named init argument of ``cls`` and of the classes it passes ``**kwargs`` on to."""
    args = [
        name
        for c in cls.__mro__
        if "__init__" in vars(c) and issubclass(c, Task)
        for name, p in inspect.signature(c.__init__).parameters.items()
        if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    return list(dict.fromkeys(args))


def test_the_built_in_tasks_are_registered():
    assert {"classification", "segmentation", "detection"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_task_declares_the_contract(name):
    cls = TASKS.get(name)
    assert issubclass(cls, Task) and cls.task_name == name
    assert isinstance(cls.monitor, Monitor)
    assert cls.monitor.metric.startswith("val/") and cls.monitor.mode in ("min", "max")
    assert set(Task.linked) <= set(init_args(cls))
    assert name in EVALUATORS, f"no evaluator registered as '{name}'"
    assert name in EXPORTS, f"no exporter registered as '{name}'"


@pytest.mark.parametrize("name", NAMES)
def test_every_init_argument_is_documented_for_the_cli(name):
    """jsonargparse follows ``**kwargs`` into Task's signature: every argument, with its doc."""
    cls = TASKS.get(name)
    parser = ArgumentParser()
    parser.add_class_arguments(cls, "model")
    actions = {a.dest: a for a in parser._actions}
    for arg in init_args(cls):
        action = actions.get(f"model.{arg}")
        assert action is not None, f"model.{arg} is missing from {cls.__name__}'s arguments"
        assert action.help, f"model.{arg} has no docstring entry in {cls.__name__} or Task"


@pytest.mark.parametrize("name", NAMES)
def test_hyperparameters_record_every_argument_and_rebuild_the_task(name):
    cls = TASKS.get(name)
    task = cls(**LINKED, lr=0.01, optimizer="SGD", optimizer_options={"momentum": 0.9})
    assert set(init_args(cls)) <= set(task.hparams)
    assert task.hparams.lr == 0.01 and task.class_names == LINKED["class_names"]
    again = cls(**task.hparams)
    again.load_state_dict(task.state_dict())
    task.hparams.scheduler = "constant"  # no trainer here to count the steps of a schedule
    optimizer = task.configure_optimizers()
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.defaults["momentum"] == 0.9


def _batch(name: str) -> tuple:
    x = torch.rand(2, 3, 64, 64)
    index = torch.tensor([4, 7])
    if name == "classification":
        return x, torch.tensor([0, 2]), index
    if name == "segmentation":
        return x, torch.randint(0, 3, (2, 64, 64)), index
    boxes = torch.tensor([[4.0, 4.0, 30.0, 30.0]])
    targets = [{"boxes": boxes, "labels": torch.tensor([1])} for _ in range(2)]
    return x, targets, index


@pytest.mark.parametrize(
    "name", [n for n in NAMES if n in ("classification", "segmentation", "detection")]
)
def test_predict_step_gives_the_evaluator_index_and_target(name):
    task = TASKS.get(name)(**LINKED).eval()
    batch = _batch(name)
    with torch.no_grad():
        out = task.predict_step(batch, 0)
    assert torch.equal(out["index"], batch[2])
    assert "target" in out
    assert evaluator_for(task) is EVALUATORS.get(name)


@pytest.mark.parametrize("name", NAMES)
def test_chance_level_without_data_is_unknown(name):
    assert TASKS.get(name)(**LINKED).chance_level(None) is None


class _Counted:
    """A data module with what the built-in tasks count for their chance level."""

    num_classes = 3
    class_counts = [6, 3, 1]

    def __init__(self) -> None:
        self.index = SimpleNamespace(positions={"train": [0, 1]})

    def raw_pair(self, position: int) -> tuple[np.ndarray, np.ndarray]:
        mask = np.array([[0, 0, 0], [0, 1, 255]]) if position == 0 else np.zeros((2, 3), int)
        return np.zeros((2, 3, 3)), mask


@pytest.mark.parametrize(
    ("name", "metric", "baseline", "value"),
    [("classification", "val/f1", "majority class", 2 * 0.6 / 1.6 / 3),
     ("segmentation", "val/iou", "majority class everywhere", 10 / 11 / 2),
     ("detection", "val/map", "no correct detection", 0.0)],
)  # fmt: skip
def test_each_task_answers_its_chance_level(name, metric, baseline, value):
    chance = TASKS.get(name)(**LINKED).chance_level(_Counted())
    assert chance.metric == metric
    assert chance.baselines[baseline] == pytest.approx(value)


def test_chance_level_of_a_data_module_without_counts_is_unknown():
    for name in ("classification", "segmentation"):
        assert TASKS.get(name)(**LINKED).chance_level(object()) is None
