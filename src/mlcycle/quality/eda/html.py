"""A single self-contained HTML page: inline CSS, figures as base64 PNG, nothing fetched."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from tqdm.auto import tqdm

from mlcycle.quality.eda import annotations, figures, tables
from mlcycle.quality.eda.analysis import EDA
from mlcycle.quality.eda.sections import SECTIONS

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.85em; }
td, th { border: 1px solid #ddd; padding: 2px 8px; text-align: left; vertical-align: top; }
caption { text-align: left; font-style: italic; padding: 2px 0; }
img { max-width: 100%; display: block; margin: 0.6em 0; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: 0.4em 0.8em; }
"""


MODULES = {"tables": tables, "figures": figures, "annotations": annotations}


def _part(eda: EDA, module: str, name: str, *args: str) -> str:
    fig = getattr(MODULES[module], name)(eda, *args)
    if fig is None or isinstance(fig, str):
        return fig or ""
    data = base64.b64encode(figures.png(fig)).decode("ascii")
    return f'<img alt="{html.escape(name)}" src="data:image/png;base64,{data}">'


def render(eda: EDA) -> str:
    """The whole page as a string."""
    test_note = (
        "The test split was read because --include-test was given."
        if eda.include_test
        else "The test split was not read (sealed); pass --include-test to include it."
    )
    body = [
        "<h1>Exploratory data analysis</h1>",
        f'<p class="note">{html.escape(test_note)} Source: {html.escape(eda.source)}; '
        f"{len(eda.items)} images analysed ({html.escape(eda.task)}).</p>",
    ]
    parts = [(h, e) for h, entries in SECTIONS for e in entries]
    done: set[str] = set()
    for heading, entry in tqdm(parts, desc="drawing", leave=False, disable=len(eda.items) < 2000):
        if heading not in done:
            body.append(f"<h2>{html.escape(heading)}</h2>")
            done.add(heading)
        body.append(_part(eda, *entry))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>EDA: {html.escape(', '.join(eda.configs))}</title><style>{STYLE}</style>"
        f"</head><body>{''.join(body)}</body></html>\n"
    )


def write_html(eda: EDA, path: Path) -> Path:
    path.write_text(render(eda), encoding="utf-8")
    return path
