"""The model card's page: one self-contained HTML file (inline CSS, PNGs as base64; no scripts,
no external links), readable printed or offline, from the templates in ``templates/card/``.

A section is a dict: its ``id`` (the anchor, and its template ``card/<id>.html``), its
``title``, and the values its template shows. Table cells are plain values (numbers are
right-aligned, ``None`` shows as '-'), a :class:`Verdict` or an :class:`Interval`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from mlcycle.core.html import render

Section = dict[str, Any]


def section(ident: str, title: str, **values: Any) -> Section:
    """A section of the card: ``ident`` names its template (``card/<ident>.html``)."""
    return {"id": ident, "title": title, **values}


@dataclass(frozen=True)
class Verdict:
    """A cell's text marked pass (green), fail (red) or neither (``passed`` None: grey)."""

    passed: bool | None
    text: str
    kind: ClassVar[str] = "verdict"

    @property
    def css(self) -> str:
        return "muted" if self.passed is None else "pass" if self.passed else "fail"


@dataclass(frozen=True)
class Interval:
    """A value with its 95% interval in brackets."""

    value: float
    low: float
    high: float
    kind: ClassVar[str] = "interval"


def page(title: str, subtitle: str, sections: list[Section]) -> str:
    """The whole document, its sections in order with a table of contents."""
    return render("card/page.html", title=title, subtitle=subtitle, sections=sections) + "\n"
