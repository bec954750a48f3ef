"""HTML pages from Jinja2 templates with one shared layout (``templates/base.html``).

Every page mlcycle writes (the model card, the leaderboard, the EDA and monitor reports, the
server's page) extends ``base.html``: one stylesheet, self-contained (inline CSS, figures as
data URIs), readable offline and printed. Values are escaped unless marked safe.
"""

from __future__ import annotations

import base64
from functools import cache
from pathlib import Path
from typing import Any

import jinja2


@cache
def environment() -> jinja2.Environment:
    """The one Jinja2 environment: templates from the package's ``templates/`` folder."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("mlcycle", "templates"),
        autoescape=jinja2.select_autoescape(("html", "j2"), default=True),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["number"] = number
    env.filters["png_uri"] = png_uri
    return env


def render(template: str, **context: Any) -> str:
    """``template`` (a path under ``templates/``) filled with ``context``."""
    return environment().get_template(template).render(**context)


def number(value: object, digits: int = 4) -> str:
    """A cell's text: floats to ``digits`` decimals, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, float) and not isinstance(value, bool):
        return f"{value:.{digits}f}"
    return str(value)


def png_uri(path: str | Path) -> str:
    """A PNG file as a data URI, so a page stays one file."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f"data:image/png;base64,{data}"
