"""Comparing the prediction store with the model's reference, per window: the rows of one
model version, each window's checks, the report monitor.json holds and a line per window.
``mlcycle.commands.monitor`` (``scripts/monitor.py``) runs it from the command line."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from mlcycle.core.errors import UserError
from mlcycle.monitor.checks import window_checks, window_summary
from mlcycle.monitor.reference import load_reference, model_version
from mlcycle.monitor.thresholds import load_thresholds
from mlcycle.monitor.windows import Window, parse_time, parse_window, split_windows
from mlcycle.serve.store import PredictionStore


def read_rows(url: str, since: Any = None, until: Any = None) -> list[dict[str, Any]]:
    """The store's rows (with feedback labels) in [since, until); exit 2 when there are none."""
    try:
        engine = sa.create_engine(url)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise UserError(f"--db '{url}' is not a database URL SQLAlchemy can open: {exc}") from exc
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if not database or database == ":memory:" or not Path(database).is_file():
            raise UserError(f"--db '{url}': no SQLite database at '{database}'")
    try:
        known = sa.inspect(engine).has_table("predictions")
    except sa.exc.SQLAlchemyError as exc:
        raise UserError(f"--db '{url}' cannot be read: {exc.__class__.__name__}") from exc
    finally:
        engine.dispose()
    if not known:
        raise UserError(f"--db '{url}' has no predictions table; is it a prediction store?")
    store = PredictionStore(url)
    try:
        if store.count() == 0:
            raise UserError(f"the prediction store '{url}' is empty: nothing was predicted yet")
        rows = store.rows(since, until)
    finally:
        store.engine.dispose()
    if not rows:
        raise UserError(f"the prediction store '{url}' has no predictions in the chosen time range")
    return rows


def same_version(stored: str, wanted: str) -> bool:
    """Equal, or the shorter (at least 8 characters) starts the longer: a short hash matches."""
    a, b = sorted((str(stored).lower(), str(wanted).lower()), key=len)
    return a == b or (len(a) >= 8 and b.startswith(a))


def select_version(rows: list[dict], wanted: str | None, model: Path) -> tuple[list[dict], str]:
    """The rows of one model version (default: the model file's sha256), or all of them."""
    if wanted == "all":
        return rows, "all"
    version = wanted or model_version(model)
    chosen = [r for r in rows if same_version(r["model_version"], version)]
    if not chosen:
        found = Counter(str(r["model_version"]) for r in rows).most_common(5)
        listed = ", ".join(f"{v[:16]} ({n} rows)" for v, n in found)
        raise UserError(
            f"no predictions of model version {version[:16]} in the chosen rows (found: "
            f"{listed}); pass --model-version all or one of these"
        )
    return chosen, version


def headline(predictions: dict[str, Any] | None) -> dict[str, Any] | None:
    """The reference's val numbers the checks compare with (not its samples)."""
    if not predictions or "classes" not in predictions:
        return None
    return {
        "images": predictions.get("images"),
        "classes": predictions["classes"],
        "confidence_mean": (predictions.get("confidence") or {}).get("mean"),
        "accuracy": predictions.get("accuracy"),
        "macro_f1": predictions.get("macro_f1"),
    }


def judge(window: Window, reference: dict, thresholds: dict) -> dict[str, Any]:
    """One window's record for monitor.json."""
    checks = window_checks(window.rows, reference, thresholds)
    return {
        "start": window.start.isoformat(),
        "end": window.end.isoformat(),
        **window_summary(window.rows),
        "judged": len(window.rows) >= thresholds["min_rows"],
        "flagged": any(c["flagged"] for c in checks),
        "checks": checks,
    }


def monitor(
    db: str,
    model: Path,
    since: str | None = None,
    until: str | None = None,
    window: str | None = None,
    model_version: str | None = None,
    thresholds: str | Path | None = None,
) -> dict[str, Any]:
    """Every window's checks against the reference of ``model`` (nothing written)."""
    limits = load_thresholds(thresholds)
    size = parse_window(window)
    start, end = parse_time(since, "--since"), parse_time(until, "--until")
    if start and end and start >= end:
        raise UserError("--since must be before --until")
    reference = load_reference(model)
    rows, version = select_version(read_rows(db, start, end), model_version, model)
    windows = [judge(w, reference, limits) for w in split_windows(rows, size, start, end)]
    return {
        "db": db,
        "model": str(model),
        "model_version": version,
        "reference": {"split": limits["reference_split"], "kind": reference.get("kind")},
        "reference_predictions": headline(reference.get("predictions")),
        "window": window or "all",
        "thresholds": limits,
        "flagged": any(w["flagged"] for w in windows),
        "windows": windows,
    }


def line(window: dict[str, Any]) -> str:
    """One printed line per window."""
    head = f"{window['start'][:16]} .. {window['end'][:16]}  {window['rows']:>6} rows"
    head += f" {window['feedback']:>5} feedback  "
    if not window["judged"]:
        return head + "not judged (too few rows)"
    flagged = [c for c in window["checks"] if c["flagged"]]
    if not flagged:
        return head + f"ok ({sum(c['judged'] for c in window['checks'])} checks)"
    return head + "DRIFT " + ", ".join(f"{c['check']}:{c['subject']}" for c in flagged)
