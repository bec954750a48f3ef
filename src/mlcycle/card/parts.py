"""What the model card says about one task: a :class:`CardPart` per ``task_name``.

The card asks the run's part, never the task's name: which metrics head the metrics table,
which of the run's figures show its errors, which verification numbers an exported file gets,
how the metrics' intervals are computed, and whether the data section adds a table. The base
class answers for any task (every recorded number, no intervals, no figures of errors); a task's
own part overrides what it knows better.

Parts register in :data:`CARD_PARTS` under the task's ``task_name``, the way a plugin does:
through the ``mlcycle.card_parts`` entry-point group (an object entry point, registered under
its name). mlcycle's own image and table parts live in ``mlcycle.images.card`` and
``mlcycle.tables.card``. A task with no part gets the base class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from mlcycle.core.registry import Registry

if TYPE_CHECKING:
    from mlcycle.card.facts import Facts, SplitResult


class CardPart:
    """The model card's questions to a task, with answers that fit any task.

    Class attributes:
        metric_keys: the metrics table's columns, in order; empty: every number recorded.
        error_figures: name prefixes of the run's PNG files shown under "Confusion matrix and
            errors" (``misclassified`` finds ``misclassified.png`` and ``misclassified_val.png``).
        captions: a caption per figure name (without the split suffix); default: the name.
        checks: the numbers of an exported file's ``verification.json`` row the export section
            shows, in order; ``None``: every fractional number of the row but its size.
    """

    metric_keys: ClassVar[tuple[str, ...]] = ()
    error_figures: ClassVar[tuple[str, ...]] = ()
    captions: ClassVar[dict[str, str]] = {}
    checks: ClassVar[tuple[str, ...] | None] = None

    def intervals(self, facts: Facts, result: SplitResult, predict: bool, resamples: int) -> None:
        """Add 95% intervals (``result.intervals``) and how they were computed (``result.notes``);
        ``predict`` allows recomputing per-image predictions, ``resamples`` is for a bootstrap."""
        result.notes.append(
            f"no intervals for {facts.task} metrics (they need per-image scores; "
            "the card shows the recorded values)"
        )

    def data_table(self, facts: Facts) -> dict[str, Any] | None:
        """A table (``{"header": [...], "rows": [...]}``) the data section adds, or ``None``."""
        return None

    def model_rows(self, facts: Facts, rows: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
        """The model section's rows (task class, architecture, training, ...), as the task
        describes its model; the base keeps them."""
        return rows

    def data_rows(self, facts: Facts, rows: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
        """The data section's rows (source, counts, input), as the kind of data describes
        itself; the base keeps the images' rows."""
        return rows

    def verified(self, report: dict[str, Any]) -> tuple[list[dict[str, Any]], Any, str]:
        """The exported files' rows of ``verification.json``, how many samples they were
        checked on, and what a sample is called (``images``)."""
        return list(report.get("artifacts", [])), report.get("images"), "images"

    def check_values(self, artifact: dict[str, Any]) -> list[tuple[str, float]]:
        """The verification numbers of one exported file (see :attr:`checks`)."""
        keys = self.checks
        if keys is None:
            keys = tuple(k for k in artifact if not k.startswith("size"))
        return [(k, artifact[k]) for k in keys if isinstance(artifact.get(k), float)]


CARD_PARTS: Registry[type[CardPart]] = Registry(
    "model-card part", "task_name", "mlcycle.card_parts"
)


def card_part(task_name: str) -> CardPart:
    """The registered part of the task ``task_name``; the base part when it has none."""
    return CARD_PARTS.get(task_name)() if task_name in CARD_PARTS else CardPart()
