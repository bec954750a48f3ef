"""``GET /``: one self-contained page (no external files) to try the model: upload an image, see
the answer in the model's output form (the class and its top-k bars, the mask over the image,
the boxes on it, the labels and their probabilities) and the model card. The page is
``templates/serve/page.html``."""

from __future__ import annotations

from functools import cache

from mlcycle.core.html import render


@cache
def page() -> str:
    """The page's HTML (the same for every model: it reads the card from ``/v1/model``)."""
    return render("serve/page.html")
