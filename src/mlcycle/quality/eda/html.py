"""The EDA page, one self-contained HTML file: ``templates/quality/eda.html`` on the shared
layout, figures as base64 PNG data URIs, nothing fetched. The image and the table EDA fill it
from their outlines (a heading and its tables and figures)."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from markupsafe import Markup
from tqdm.auto import tqdm

from mlcycle.core.html import render
from mlcycle.quality.eda import annotations, figures, tables
from mlcycle.quality.eda.analysis import EDA
from mlcycle.quality.eda.sections import SECTIONS

MODULES = {"tables": tables, "figures": figures, "annotations": annotations}
Part = Markup | dict[str, str]  # an HTML table or paragraph, or a figure {"alt", "src"}


def figure_part(name: str, png: bytes) -> dict[str, str]:
    """A figure of the page: its name and its PNG as a data URI."""
    return {"alt": name, "src": "data:image/png;base64," + base64.b64encode(png).decode("ascii")}


def html_part(fragment: str | None) -> Markup:
    """A table or paragraph of the page (built by the quality templates, so already escaped)."""
    return Markup(fragment or "")


def draw_sections(
    outline: Sequence[tuple[str, Sequence[Any]]],
    draw: Callable[[Any], Part],
    disable_progress: bool,
) -> list[dict[str, Any]]:
    """``[{heading, parts}]``: each entry of ``outline`` drawn by ``draw``, under its heading."""
    entries = [(heading, entry) for heading, entries in outline for entry in entries]
    sections: list[dict[str, Any]] = []
    for heading, entry in tqdm(entries, desc="drawing", leave=False, disable=disable_progress):
        if not sections or sections[-1]["heading"] != heading:
            sections.append({"heading": heading, "parts": []})
        sections[-1]["parts"].append(draw(entry))
    return sections


def page(title: str, heading: str, note: str, sections: list[dict[str, Any]]) -> str:
    """The whole page as a string."""
    return render("quality/eda.html", title=title, heading=heading, note=note, sections=sections)


def _part(eda: EDA, entry: tuple[str, ...]) -> Part:
    module, name, *args = entry
    fig = getattr(MODULES[module], name)(eda, *args)
    if fig is None or isinstance(fig, str):
        return html_part(fig)
    return figure_part(name, figures.png(fig))


def render_eda(eda: EDA) -> str:
    """The image EDA page as a string."""
    test_note = (
        "The test split was read because --include-test was given."
        if eda.include_test
        else "The test split was not read (sealed); pass --include-test to include it."
    )
    note = f"{test_note} Source: {eda.source}; {len(eda.items)} images analysed ({eda.task})."
    sections = draw_sections(SECTIONS, lambda entry: _part(eda, entry), len(eda.items) < 2000)
    return page(f"EDA: {', '.join(eda.configs)}", "Exploratory data analysis", note, sections)


def write_html(eda: EDA, path: Path) -> Path:
    path.write_text(render_eda(eda), encoding="utf-8")
    return path
