"""The epoch diagnosis rules and the figures the callbacks draw."""

from __future__ import annotations

import numpy as np
import torch

from mlcycle.callbacks.fit_diagnosis import diagnose
from mlcycle.reports.mistakes import confusion_matrix, top_mistakes


def rows(train_loss, val_loss, train_err, val_err):
    return [
        {"train/loss": a, "val/loss": b, "train/error": c, "val/error": d}
        for a, b, c, d in zip(train_loss, val_loss, train_err, val_err, strict=True)
    ]


def test_over_fitting_when_val_loss_rises_while_train_falls():
    flag = diagnose(
        rows([1.0, 0.8, 0.6], [0.9, 0.95, 1.1], [0.1, 0.08, 0.05], [0.12, 0.12, 0.13]), 10
    )
    assert flag and flag.kind == "overfitting" and flag.scope == "epoch" and flag.epoch == 3
    assert flag.values["val/loss"] == [0.9, 0.95, 1.1] and "weight_decay" in flag.next_step


def test_over_fitting_when_error_gap_widens():
    flag = diagnose(
        rows([1.0, 0.8, 0.6], [0.9, 0.9, 0.9], [0.1, 0.05, 0.01], [0.12, 0.12, 0.13]), 10
    )
    assert flag and flag.kind == "overfitting" and "gap" in flag.message


def test_no_over_fitting_flag_for_a_model_that_learned_nothing():
    """lr=1e-9 on the quick start: val loss drifts up, train loss barely moves, error at chance."""
    flag = diagnose(
        rows([2.4710, 2.4653, 2.4602], [2.3011, 2.3395, 2.3521], [0.92, 0.91, 0.90], [0.91] * 3),
        10,
    )
    assert flag is not None and flag.kind == "underfitting"


def test_under_fitting_when_both_errors_high_and_loss_flat():
    flag = diagnose(
        rows([2.0, 1.995, 1.99], [2.0, 2.0, 2.0], [0.7, 0.7, 0.69], [0.7, 0.7, 0.7]), 10
    )
    assert flag and flag.kind == "underfitting" and "--find_lr" in flag.next_step


def test_healthy_training_is_not_flagged():
    assert (
        diagnose(rows([1.0, 0.6, 0.4], [1.0, 0.7, 0.5], [0.3, 0.2, 0.1], [0.3, 0.22, 0.12]), 10)
        is None
    )
    assert diagnose(rows([1.0], [1.0], [0.3], [0.3]), 10) is None


def test_confusion_matrix_and_most_confident_mistakes():
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    target = torch.tensor([0, 0, 1, 1])
    assert np.array_equal(confusion_matrix(probs, target, 2), [[1, 1], [1, 1]])
    mistakes = top_mistakes(probs, target, torch.tensor([10, 11, 12, 13]))
    assert [(m.position, m.predicted) for m in mistakes] == [(11, 1), (12, 0)]
    assert mistakes[0].confidence > mistakes[1].confidence


def test_curves_without_error_draw_the_tasks_metrics():
    from mlcycle.reports.figures import curves_figure

    history = [
        {"epoch": e, "train/loss": 2 / e, "val/loss": 1.5 / e, "val/map": 0.1 * e}
        for e in (1, 2, 3)
    ]
    loss, second = curves_figure(history, ("val/map", "val/map_50")).axes
    assert len(loss.get_lines()) == 2
    assert [line.get_label() for line in second.get_lines()] == ["val/map"]
    assert second.get_title() == "validation metrics per epoch"
    with_error = [{**r, "train/error": 0.5, "val/error": 0.4} for r in history]
    _, error = curves_figure(with_error, ("val/map",)).axes
    assert [line.get_label() for line in error.get_lines()] == ["train", "val"]
