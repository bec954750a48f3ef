"""``GET /``: one self-contained page (no external files) to try the model. Its input part is
``templates/serve/inputs/<input kind>.html`` (images when there is none for the kind): an image
upload answered in the model's output form (the class and its top-k bars, the mask over the
image, the boxes on it, the labels and their probabilities), or for a table model a form built
from the schema (one field per column) and a CSV upload. The model card is read from
``/v1/model``. The page is ``templates/serve/page.html``."""

from __future__ import annotations

from typing import Any

from mlcycle.core.html import render


def page(card: dict[str, Any]) -> str:
    """The page's HTML for the model of ``card`` (``/v1/model``'s card)."""
    given = card.get("input") or {}
    return render(
        "serve/page.html",
        input_kind=str(given.get("kind") or "image"),
        columns=given.get("columns") or [],
    )
