"""How compare.py (and tune.py's folds) cross-validate the multi-label task.

As any image task: the train+val images of its ``ImageClassificationData`` are cut into folds,
every candidate is a train.py run per fold, and each fold is scored by its run's own val
metrics (macro F1 over labels, exact match, ...). Here the folds are stratified by each
image's label set (its class, ``"cat|dog"``), so every combination is in every fold. Registered
under the task's ``task_name`` in the ``mlcycle.comparisons`` entry-point group.
"""

from __future__ import annotations

from mlcycle.images.selection.compare import ImageComparison


class MultiLabelComparison(ImageComparison):
    """Folds stratified by label set; each scored by its fold run's val metrics."""

    stratified = True
