"""The table tasks' part of the model card (``mlcycle.card.parts``): the confusion matrix of a
table classifier among the figures of errors. Registered through the ``mlcycle.card_parts``
entry points."""

from __future__ import annotations

from mlcycle.card.parts import CardPart


class TableCard(CardPart):
    error_figures = ("confusion_matrix",)
    captions = {"confusion_matrix": "Confusion matrix (rows true, columns predicted)"}
    checks = ()  # the card lists no verification numbers of a table model
