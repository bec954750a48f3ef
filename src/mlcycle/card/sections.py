"""The model card's sections from a run's :class:`Facts`: task and intended use, model, data,
metrics, objective gate and per-class results. Each is a :data:`~mlcycle.card.html.Section`
(``card/<id>.html`` shows it)."""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import urlsplit

from mlcycle.card.facts import Facts, SplitResult
from mlcycle.card.html import Interval, Section, Verdict, section
from mlcycle.core.html import number

PLACEHOLDER = (
    "Not stated yet. Fill in what the model is for, who uses its predictions and how, on which "
    "images, and what it must not be used for (report.py --intended-use TEXT)."
)


def intended_use(facts: Facts, text: str | None) -> Section:
    given = text or facts.run.config.get("intended_use")
    return section(
        "intended-use",
        "Task and intended use",
        task=facts.task,
        given=given,
        placeholder=PLACEHOLDER,
    )


def model(facts: Facts) -> Section:
    config, m = facts.run.config, facts.metrics
    init = config["model"].get("init_args") or {}
    versions = m.get("versions") or {}
    rows = [
        ("task class", config["model"]["class_path"]),
        ("architecture", init.get("arch")),
        (
            "trained",
            f"{m.get('epochs')} epochs, best epoch {m.get('best_epoch')} by {m.get('monitor')}, "
            f"{m.get('wall_time_s')} s on {m.get('device')} ({m.get('precision')})",
        ),
        ("status", f"{m.get('status')}; learned: {m.get('learned')}"),
        ("seed", m.get("seed", config.get("seed_everything"))),
        (
            "optimizer",
            f"{init.get('optimizer')}, lr {init.get('lr')}, {init.get('scheduler')} schedule",
        ),
        ("libraries", ", ".join(f"{k} {v}" for k, v in versions.items())),
        ("run directory", str(facts.run.path)),
    ]
    return section("model", "Model", rows=facts.part.model_rows(facts, rows))


def _source(facts: Facts) -> str:
    init = facts.run.config["data"].get("init_args") or {}
    where = init.get("root") or init.get("manifest")
    if init.get("url"):  # a database URL may hold a password: only its scheme is shown
        where = f"{urlsplit(str(init['url'])).scheme} database; query: {init.get('query')}"
    return f"{init.get('source')}: {where}"


def data(facts: Facts) -> Section:
    info = facts.run.data_info
    counts = info.get("split_counts", {})
    rows = [
        ("source", _source(facts)),
        ("layout", info.get("layout")),
        ("fingerprint", info.get("fingerprint") or facts.metrics.get("data_fingerprint")),
        ("images", ", ".join(f"{s} {n}" for s, n in counts.items())),
        ("skipped files", f"{len(facts.skipped)} (skipped_files.csv)"),
        (
            "input",
            f"{info.get('channels')} channel(s), {info.get('image_size')}; "
            f"{info.get('resize')}; mean {info.get('mean')}, std {info.get('std')}",
        ),
    ]
    reasons = Counter(r.get("reason", "") for r in facts.skipped).most_common(10)
    rows = facts.part.data_rows(facts, rows)
    return section("data", "Data", rows=rows, classes=facts.part.data_table(facts), skipped=reasons)


def _with_interval(result: SplitResult, key: str) -> object:
    value = result.metrics.get(key)
    if key in result.intervals and isinstance(value, float):
        return Interval(value, *result.intervals[key])
    return value


def metrics(facts: Facts, results: list[SplitResult]) -> Section:
    keys = list(facts.part.metric_keys) or list(
        dict.fromkeys(k for r in results for k, v in r.metrics.items() if isinstance(v, float))
    )
    rows = [(r.split, r.images, *(_with_interval(r, k) for k in keys), r.source) for r in results]
    notes = [n for r in results for n in (f"{r.split}: {x}" for x in r.notes)]
    smoothing = (facts.run.config["model"].get("init_args") or {}).get("label_smoothing")
    if smoothing and any(r.source.startswith("metrics.json") for r in results):
        notes.append(
            f"loss: metrics.json's val loss includes label smoothing ({smoothing}); "
            "evaluate.py's loss (eval_*.json) is the plain negative log-likelihood"
        )
    return section(
        "metrics",
        "Metrics",
        header=("split", "images", *keys, "from"),
        rows=rows,
        untested="test" not in facts.evals,
        notes=notes,
    )


def gate(facts: Facts, results: list[SplitResult], latency: dict[str, Any] | None) -> Section:
    if facts.objective is None:
        return section("gate", "Objective gate", objective=None)
    limits = ", ".join(f"{k} {v}" for k, v in facts.objective.to_dict().items())
    rows = [(r.split, Verdict(r.gate.passed, r.gate.line())) for r in results if r.gate]
    exported = (facts.model_json or {}).get("gate")
    if exported:
        rows.append(("export", Verdict(exported["passed"], exported["line"])))
    limit = facts.objective.max_latency_ms
    if limit is not None and latency:
        ms = latency["median_ms"]
        rows.append(
            ("latency (this card)", Verdict(ms <= limit, f"median {ms:.3g} ms vs {limit:g} ms"))
        )
    return section("gate", "Objective gate", objective=limits, rows=rows)


def per_class(facts: Facts, results: list[SplitResult]) -> Section:
    limit = facts.objective.per_class_min if facts.objective else None
    key = facts.objective.per_class_name if facts.objective else facts.monitor.split("/")[-1]
    train = facts.run.data_info.get("train_class_counts") or {}
    splits = [r for r in results if r.per_class]
    names = list(dict.fromkeys(n for r in splits for n in r.per_class))
    columns = list(dict.fromkeys(c for r in splits for row in r.per_class.values() for c in row))
    header = ["class", "train images"] + [f"{r.split} {c}" for r in splits for c in columns]
    rows = []
    for name in names:
        cells: list[object] = [name, train.get(name)]
        for r in splits:
            row = r.per_class.get(name, {})
            for c in columns:
                value = row.get(c)
                low = c == key and limit is not None and isinstance(value, float) and value < limit
                cells.append(Verdict(False, f"{number(value)} < {limit:g}") if low else value)
        rows.append(cells)
    return section("per-class", "Per-class results", limit=limit, key=key, header=header, rows=rows)
