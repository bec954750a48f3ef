"""``monitor.json`` (every window, every check) and ``monitor.html`` (one self-contained page:
inline CSS, figures as base64 PNG, nothing fetched)."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from mlcycle.core.errors import UserError
from mlcycle.monitor import figures
from mlcycle.serve.stats import STATS

STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1300px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;
font-size:13px;text-align:left}.flag{background:#fdd}.skip{color:#999}img{max-width:100%}
summary{cursor:pointer}"""


def _img(fig: Any, name: str) -> str:
    data = base64.b64encode(figures.png(fig)).decode("ascii")
    return f'<img alt="{html.escape(name)}" src="data:image/png;base64,{data}">'


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _checks_table(checks: list[dict]) -> str:
    head = "<tr><th>check</th><th>subject</th><th>value</th><th>threshold</th><th>rows</th>"
    head += "<th>flagged</th><th>detail</th></tr>"
    body = []
    for c in checks:
        css = "flag" if c["flagged"] else ("" if c["judged"] else "skip")
        detail = {
            k: v
            for k, v in c.items()
            if k not in ("check", "subject", "value", "threshold", "judged", "flagged", "rows")
        }
        cells = [c["check"], c["subject"], c["value"], c["threshold"], c.get("rows", "")]
        cells += ["yes" if c["flagged"] else ("no" if c["judged"] else "not judged")]
        cells += [", ".join(f"{k}={_number(v)}" for k, v in detail.items())]
        body.append(f'<tr class="{css}">' + "".join(f"<td>{_number(v)}</td>" for v in cells))
    return f"<table>{head}{''.join(body)}</table>"


def _windows_table(windows: list[dict]) -> str:
    rows = ["<tr><th>window</th><th>rows</th><th>feedback</th><th>flagged checks</th></tr>"]
    for w in windows:
        flagged = [f"{c['check']}:{c['subject']}" for c in w["checks"] if c["flagged"]]
        css = "flag" if flagged else ("" if w["judged"] else "skip")
        text = ", ".join(flagged) or ("none" if w["judged"] else "not judged (too few rows)")
        rows.append(
            f'<tr class="{css}"><td>{w["start"][:16]} .. {w["end"][:16]}</td>'
            f"<td>{w['rows']}</td><td>{w['feedback']}</td><td>{html.escape(text)}</td></tr>"
        )
    return f"<table>{''.join(rows)}</table>"


def page(report: dict[str, Any]) -> str:
    """The HTML page of a monitor report."""
    windows, limits = report["windows"], report["thresholds"]
    predictions = report.get("reference_predictions") or {}
    verdict = "some window crossed a threshold" if report["flagged"] else "no threshold crossed"
    parts = [
        f"<h1>Monitoring: {html.escape(verdict)}</h1>",
        f"<p>model {html.escape(report['model'])}, version {html.escape(report['model_version'])}"
        f"; store {html.escape(report['db'])}; window {html.escape(report['window'])}; input "
        f"reference: the {html.escape(limits['reference_split'])} split.</p>",
        _windows_table(windows),
        "<h2>Input statistics: PSI per window</h2>",
        _img(figures.psi_figure(windows, list(STATS), limits["psi"]), "input PSI"),
    ]
    if predictions:
        parts += [
            "<h2>Predictions</h2>",
            _img(figures.class_figure(windows, predictions["classes"]), "classes"),
            _img(
                figures.confidence_figure(
                    windows, predictions.get("confidence_mean"), limits["confidence_shift"]
                ),
                "confidence",
            ),
            "<h2>Performance from feedback</h2>",
            _img(figures.performance_figure(windows, predictions), "performance"),
        ]
    parts.append("<h2>Every check</h2>")
    for w in windows:
        mark = " (flagged)" if w["flagged"] else ""
        parts.append(
            f"<details><summary>{w['start'][:16]} .. {w['end'][:16]}, {w['rows']} rows{mark}"
            f"</summary>{_checks_table(w['checks'])}</details>"
        )
    parts.append(f"<h2>Thresholds</h2><pre>{html.escape(json.dumps(limits, indent=1))}</pre>")
    body = "\n".join(parts)
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>mlcycle monitor</title>'
        f"<style>{STYLE}</style></head><body>{body}</body></html>\n"
    )


def write_outputs(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """``out/monitor.json`` and ``out/monitor.html``."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        json_path, html_path = out / "monitor.json", out / "monitor.html"
        json_path.write_text(json.dumps(report, indent=1, default=str) + "\n")
        html_path.write_text(page(report))
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UserError(f"cannot write to output folder '{out}': {reason}; pass --out") from exc
    return json_path, html_path
