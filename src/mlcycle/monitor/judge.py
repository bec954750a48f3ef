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
from mlcycle.monitor.estimate import model_facts, performance_text
from mlcycle.monitor.reference import load_reference, model_version
from mlcycle.monitor.thresholds import load_thresholds
from mlcycle.monitor.windows import Window, parse_time, parse_window, split_windows
from mlcycle.serve.store import PredictionStore, create_engine, one_line, shown_url


def read_rows(url: str, since: Any = None, until: Any = None) -> list[dict[str, Any]]:
    """The store's rows (with feedback labels) in [since, until); exit 2 when there are none."""
    shown = shown_url(url)
    try:
        engine = create_engine(url)  # a database server gets a few seconds to answer
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise UserError(f"--db '{shown}' is not a database URL SQLAlchemy can open: {exc}") from exc
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if not database or database == ":memory:" or not Path(database).is_file():
            raise UserError(f"--db '{shown}': no SQLite database at '{database}'")
    try:
        known = sa.inspect(engine).has_table("predictions")
    except sa.exc.SQLAlchemyError as exc:
        raise UserError(f"--db '{shown}' cannot be read: {one_line(exc)}") from exc
    finally:
        engine.dispose()
    if not known:
        raise UserError(f"--db '{shown}' has no predictions table; is it a prediction store?")
    store = PredictionStore(url)
    try:
        if store.count() == 0:
            raise UserError(f"the prediction store '{shown}' is empty: nothing was predicted yet")
        rows = with_inputs(store.engine, store.rows(since, until))
    finally:
        store.engine.dispose()
    if not rows:
        raise UserError(
            f"the prediction store '{shown}' has no predictions in the chosen time range"
        )
    return rows


def with_inputs(engine: sa.Engine, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with the store's ``inputs`` column (a table row's features, JSON) where the
    database has it and the store's reads do not return it."""
    if not rows or "inputs" in rows[0]:
        return rows
    table = sa.Table("predictions", sa.MetaData(), autoload_with=engine)
    if "inputs" not in table.c:
        return rows
    with engine.connect() as connection:
        found = dict(connection.execute(sa.select(table.c.id, table.c.inputs)).all())
    return [{**row, "inputs": found.get(row["id"])} for row in rows]


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
        "images": predictions.get("images", predictions.get("rows")),
        "classes": predictions["classes"],
        "confidence_mean": (predictions.get("confidence") or {}).get("mean"),
        "accuracy": predictions.get("accuracy"),
        "macro_f1": predictions.get("macro_f1"),
    }


def judge(window: Window, reference: dict, thresholds: dict) -> dict[str, Any]:
    """One window's record for monitor.json."""
    checks = window_checks(window.rows, reference, thresholds)
    classes = "classes" in (reference.get("predictions") or {})
    return {
        "start": window.start.isoformat(),
        "end": window.end.isoformat(),
        **window_summary(window.rows, classes),
        "judged": len(window.rows) >= thresholds["min_rows"],
        "flagged": any(c["flagged"] for c in checks),
        "moved": moved(checks),
        "checks": checks,
    }


def moved(checks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The inputs that moved (a flagged input check), in the checks' order: a table's columns
    by importance, then drift size. Each with its importance and the checks it failed."""
    found: dict[str, dict[str, Any]] = {}
    for c in checks:
        if c["flagged"] and c["check"].startswith("input_"):
            entry = found.setdefault(
                c["subject"],
                {"input": c["subject"], "importance": c.get("importance"), "checks": []},
            )
            entry["checks"].append(c["check"])
    return list(found.values())


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
    reference = {**load_reference(model), **model_facts(model)}  # objective, calibration
    rows, version = select_version(read_rows(db, start, end), model_version, model)
    windows = [judge(w, reference, limits) for w in split_windows(rows, size, start, end)]
    return {
        "db": db,
        "model": str(model),
        "model_version": version,
        "reference": {
            "split": limits["reference_split"],
            "kind": reference.get("kind"),
            "input_kind": reference.get("input_kind") or "image",
            "inputs": inputs_of(reference, limits["reference_split"]),
            "importance": (reference.get("importance") or {}).get("method"),
        },
        "reference_predictions": headline(reference.get("predictions")),
        "window": window or "all",
        "thresholds": limits,
        "flagged": any(w["flagged"] for w in windows),
        "windows": windows,
    }


def inputs_of(reference: dict[str, Any], split: str) -> list[str]:
    """What the input checks are about: a table's columns (by importance), else the image
    statistics."""
    found = reference["splits"][split]
    if "columns" in found:
        ranked = [c["name"] for c in reference.get("columns") or []]
        return ranked or list(found["columns"])
    return list(found.get("statistics") or {})


def line(window: dict[str, Any]) -> str:
    """One printed line per window, then its performance (from feedback, estimated)."""
    text = _verdict(window)
    performance = performance_text(window["checks"]) if window["judged"] else ""
    return text + (f"\n    {performance}" if performance else "")


def _verdict(window: dict[str, Any]) -> str:
    head = f"{window['start'][:16]} .. {window['end'][:16]}  {window['rows']:>6} rows"
    head += f" {window['feedback']:>5} feedback  "
    if not window["judged"]:
        return head + "not judged (too few rows)"
    flagged = [c for c in window["checks"] if c["flagged"]]
    if not flagged:
        return head + f"ok ({sum(c['judged'] for c in window['checks'])} checks)"
    text = head + "DRIFT " + ", ".join(f"{c['check']}:{c['subject']}" for c in flagged)
    if window.get("moved"):
        text += "; moved: " + ", ".join(m["input"] for m in window["moved"])
    return text
