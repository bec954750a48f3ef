"""``monitor.json`` (every window, every check) and ``monitor.html`` (one self-contained page
from ``templates/monitor/report.html``: inline CSS, figures as base64 PNG, nothing fetched)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from mlcycle.core.errors import UserError
from mlcycle.core.html import render
from mlcycle.monitor import figures
from mlcycle.monitor.estimate import performance_text
from mlcycle.serve.stats import STATS

MAX_PSI_FIGURES = 24  # inputs drawn in the PSI figure (a table's most important columns)
HIDDEN = ("check", "subject", "value", "threshold", "judged", "flagged", "rows")  # not detail


def _uri(fig: Any) -> str:
    """A figure as a PNG data URI, so the page stays one file."""
    return "data:image/png;base64," + base64.b64encode(figures.png(fig)).decode("ascii")


def _cell(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _check_row(c: dict[str, Any]) -> dict[str, Any]:
    detail = {k: v for k, v in c.items() if k not in HIDDEN}
    cells = [c["check"], c["subject"], c["value"], c["threshold"], c.get("rows", "")]
    cells += ["yes" if c["flagged"] else ("no" if c["judged"] else "not judged")]
    cells += [", ".join(f"{k}={_cell(v)}" for k, v in detail.items())]
    css = "flag" if c["flagged"] else ("" if c["judged"] else "skip")
    return {"css": css, "cells": [_cell(v) for v in cells]}


def _moved_text(w: dict[str, Any]) -> str:
    """The inputs that moved, most important first, with their importance when known."""
    return ", ".join(
        m["input"] + ("" if m.get("importance") is None else f" (importance {m['importance']:.3g})")
        for m in w.get("moved") or []
    )


def _window_row(w: dict[str, Any]) -> dict[str, Any]:
    flagged = [f"{c['check']}:{c['subject']}" for c in w["checks"] if c["flagged"]]
    return {
        "moved": _moved_text(w),
        "performance": performance_text(w["checks"]),  # from feedback beside the estimate
        "span": f"{w['start'][:16]} .. {w['end'][:16]}",
        "rows": w["rows"],
        "feedback": w["feedback"],
        "flagged": w["flagged"],
        "css": "flag" if flagged else ("" if w["judged"] else "skip"),
        "flagged_text": ", ".join(flagged)
        or ("none" if w["judged"] else "not judged (too few rows)"),
        "checks": [_check_row(c) for c in w["checks"]],
    }


def _figures(
    windows: list[dict], limits: dict, predictions: dict, inputs: list[str]
) -> dict[str, str]:
    found = {"psi": _uri(figures.psi_figure(windows, inputs[:MAX_PSI_FIGURES], limits["psi"]))}
    if predictions:
        mean = predictions.get("confidence_mean")
        found["classes"] = _uri(figures.class_figure(windows, predictions["classes"]))
        found["confidence"] = _uri(
            figures.confidence_figure(windows, mean, limits["confidence_shift"])
        )
        found["performance"] = _uri(figures.performance_figure(windows, predictions))
    return found


def page(report: dict[str, Any]) -> str:
    """The HTML page of a monitor report."""
    windows, limits = report["windows"], report["thresholds"]
    return render(
        "monitor/report.html",
        verdict="some window crossed a threshold" if report["flagged"] else "no threshold crossed",
        report=report,
        windows=[_window_row(w) for w in windows],
        figures=_figures(
            windows,
            limits,
            report.get("reference_predictions") or {},
            report["reference"].get("inputs") or list(STATS),
        ),
        thresholds=json.dumps(limits, indent=1),
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
