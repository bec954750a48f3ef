"""HTML pieces of the model card: one self-contained page (inline CSS, PNGs as base64; no
scripts, no external links), readable printed or offline."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1000px;
margin:2em auto;padding:0 1em;color:#1f2328;line-height:1.45}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #d0d7de;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}
th,td{border:1px solid #d0d7de;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#1a7f37;font-weight:600}.fail{color:#cf222e;font-weight:600}
.muted{color:#656d76}.placeholder{background:#fff8c5;padding:.6em;border:1px solid #d4a72c}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #d0d7de}
figcaption{color:#656d76;font-size:.9em}nav ol{columns:2}code{background:#f6f8fa;padding:0 .2em}
"""


def esc(value: object) -> str:
    return escape(str(value), quote=True)


def number(value: object, digits: int = 4) -> str:
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A table; cells are escaped text, except those already wrapped by :func:`raw`."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def pairs(rows: Iterable[tuple[str, object]]) -> str:
    """A two-column table of names and values (no header row)."""
    body = "".join(
        f"<tr><th>{esc(k)}</th><td>{esc('-' if v is None else v)}</td></tr>" for k, v in rows
    )
    return f"<table><tbody>{body}</tbody></table>"


class raw(str):  # noqa: N801 - reads as a marker in table rows
    """Markup that :func:`table` puts in as it is."""


def _cell(value: object) -> str:
    if isinstance(value, raw):
        return f"<td>{value}</td>"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f'<td class="num">{esc(number(value))}</td>'
    return f"<td>{esc('-' if value is None else value)}</td>"


def verdict(passed: bool | None, text: str) -> raw:
    kind = "muted" if passed is None else "pass" if passed else "fail"
    return raw(f'<span class="{kind}">{esc(text)}</span>')


def figure(path: Path, caption: str) -> str:
    """The PNG at ``path`` inline (base64), with its caption and file name."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure><img alt="{esc(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{esc(caption)} <span class='muted'>({esc(path.name)})</span></figcaption></figure>"
    )


def bullets(items: Iterable[str], markup: bool = False) -> str:
    lines = [f"<li>{item if markup else esc(item)}</li>" for item in items]
    return f"<ul>{''.join(lines)}</ul>" if lines else "<p class='muted'>None.</p>"


def section(ident: str, title: str, body: str) -> str:
    return f'<section id="{esc(ident)}"><h2>{esc(title)}</h2>{body}</section>'


def page(title: str, subtitle: str, sections: list[tuple[str, str, str]]) -> str:
    """The whole document; ``sections`` are ``(id, title, body html)``."""
    nav = "".join(f'<li><a href="#{esc(i)}">{esc(t)}</a></li>' for i, t, _ in sections)
    body = "".join(section(*s) for s in sections)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{esc(title)}</h1><p class='muted'>{esc(subtitle)}</p>"
        f"<nav><ol>{nav}</ol></nav>{body}</body></html>\n"
    )
