"""What compare.py writes after the fits: leaderboard, out-of-fold error analysis, shortlist,
importance maps, and the self-contained HTML page that links them."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mlcycle.core.record import Stopwatch, write_json
from mlcycle.reports.figures import save
from mlcycle.selection import analysis, leaderboard, tables_report
from mlcycle.selection.scores import score_key, summarize

GALLERY_MODELS = 4


def out_of_fold(records: list[dict[str, Any]], size: int, classes: int) -> np.ndarray | None:
    """A candidate's probabilities for every pool image, each from the fold model that did not
    train on it; None unless every fold finished."""
    if any(r.get("status") != "finished" for r in records):
        return None
    probs = np.full((size, classes), np.nan, dtype=np.float32)
    for record in records:
        probs[record["rows"]] = record["probs"]
    return None if np.isnan(probs).any() else probs


def write_report(
    comparison: Any,
    candidates: list[Any],
    results: dict[str, list[dict]],
    command: str,
    clock: Stopwatch,
) -> dict[str, Any]:
    out, pool = comparison.out, comparison.pool
    table = getattr(pool, "table", False)
    key, mode = score_key(comparison.objective, comparison.monitor, pool.classify)
    rows = leaderboard.ranked([summarize(c, results[c.name], comparison) for c in candidates], mode)
    classes = len(pool.class_names)
    oof: dict[str, np.ndarray] = {}  # out-of-fold probabilities (classification)
    values: dict[str, np.ndarray] = {}  # out-of-fold predictions of a regression table
    for c in candidates if pool.classify or table else []:
        if pool.classify:
            found, kept, kind = out_of_fold(results[c.name], len(pool), classes), oof, "probs"
        else:
            found = tables_report.out_of_fold_values(results[c.name], len(pool))
            kept, kind = values, "pred"
        if found is not None:
            kept[c.name] = found
            np.savez_compressed(
                out / "candidates" / c.name / "oof.npz",
                **{kind: found},
                target=pool.target,
                folds=pool.folds,
                paths=np.array(pool.paths),
            )
    figures_dir = out / "figures"
    figures_dir.mkdir(exist_ok=True)
    minimum = getattr(comparison.objective, "min", None) if comparison.objective else None
    save(leaderboard.metric_figure(rows, f"val/{key}", minimum), figures_dir / "leaderboard.png")
    good = eligible(rows, oof, mode) if oof else []
    # the error analysis compares models worth keeping: one at chance would swamp its scales
    found = error_analysis({n: oof[n] for n in good}, pool, rows, figures_dir) if good else {}
    if table:
        good = good or (tables_report.eligible_values(rows, values, mode) if values else [])
        found.update(tables_report.analyse(comparison, rows, oof, values, good, figures_dir))
    elif pool.classify:
        found["importance"] = importance(comparison, rows, figures_dir)
    shortlisted = write_shortlist(comparison, oof, rows, mode) if oof else None
    if values:
        shortlisted = tables_report.write_regression_shortlist(comparison, values, good)
    leaderboard.write_csv(rows, out / "leaderboard.csv")
    notes = notes_for(comparison, command, clock, shortlisted)
    (out / "leaderboard.md").write_text(
        f"# Leaderboard: {comparison.spec.path.name}\n\n"
        + "\n\n".join(notes)
        + "\n\n"
        + leaderboard.markdown_table(rows)
        + "\n"
    )
    leaderboard.write_html(
        out / "leaderboard.html",
        f"Leaderboard: {comparison.spec.path.name}",
        rows,
        notes,
        figure_list(figures_dir, found),
        html_tables(found) + (tables_report.html_tables(found) if table else []),
    )
    summary = {
        "command": command,
        "wall_time_s": clock.seconds,
        "metric": f"val/{key}",
        "mode": mode,
        "rows": [{k: v for k, v in r.items() if k != "line"} for r in rows],
        "shortlist": shortlisted,
        **{
            k: v
            for k, v in found.items()
            if k
            in (
                "confused_pairs",
                "error_correlation",
                "confusion",
                "residuals",
                "permutation_importance",
            )
        },
    }
    write_json(out / "leaderboard.json", summary)
    print(leaderboard.console_table(rows))
    if shortlisted and "ensemble_rmse" in shortlisted:
        print(
            f"shortlist: {', '.join(shortlisted['members'])} (out-of-fold mean prediction rmse "
            f"{shortlisted['ensemble_rmse']:.4f} vs best single "
            f"{shortlisted['best_single_rmse']:.4f}); {out / 'shortlist.yaml'}"
        )
    elif shortlisted:
        print(
            f"shortlist: {', '.join(shortlisted['members'])} (out-of-fold soft vote "
            f"{shortlisted['ensemble_f1']:.4f} vs best single {shortlisted['best_single_f1']:.4f}); "
            f"{out / 'shortlist.yaml'}"
        )
        deep = shortlisted.get("deep")
        if deep:
            print(
                f"deep-only shortlist for one ONNX ensemble: {', '.join(deep['members'])} "
                f"({deep['ensemble_f1']:.4f}); {out / 'shortlist_deep.yaml'}"
            )
    print(f"wrote {out / 'leaderboard.html'} ({clock.seconds:.0f}s)")
    return summary


def error_analysis(
    oof: dict[str, np.ndarray], pool: Any, rows: list[dict[str, Any]], figures: Path
) -> dict[str, Any]:
    names, target = pool.class_names, pool.target
    table = analysis.per_class_f1(oof, target, names)
    save(analysis.per_class_f1_figure(table, names), figures / "per_class_f1.png")
    correlation = analysis.error_correlation(oof, target)
    save(analysis.error_correlation_figure(correlation), figures / "error_correlation.png")
    losses = analysis.highest_loss(oof, target)
    ranked_names = [r["candidate"] for r in rows if r["candidate"] in oof][:GALLERY_MODELS]
    if not hasattr(pool, "image"):  # a table: no images to show
        ranked_names = []
    for name in ranked_names:
        figure = analysis.highest_loss_figure(name, losses[name], pool.image, names, target)
        save(figure, figures / f"highest_loss_{name}.png")
    return {
        "per_class_f1": table,
        "confused_pairs": analysis.confused_pairs(oof, target, names),
        "error_correlation": correlation,
        "galleries": ranked_names,
    }


def importance(comparison: Any, rows: list[dict[str, Any]], figures: Path) -> dict[str, str]:
    """Attribution maps of the best deep candidate's fold-0 model and pixel permutation
    importance of the best classic candidate on pixels (refitted on fold 0); a failure here
    is reported, never fatal."""
    from mlcycle.selection import importance as imp

    done = {r["candidate"] for r in rows if r.get("mean") is not None}
    by_name = {c.name: c for c in comparison.spec.candidates}
    best_deep = next(
        (r["candidate"] for r in rows if r["family"] == "deep" and r["candidate"] in done), None
    )
    best_classic = next(
        (
            r["candidate"]
            for r in rows
            if r["family"] == "classic"
            and r["candidate"] in done
            and by_name[r["candidate"]].features == "pixels"
        ),
        None,
    )
    written: dict[str, str] = {}
    pool = comparison.pool
    _, fold_rows = pool.fold_rows(0)
    picks = [int(fold_rows[i]) for i in imp.sample_per_class(pool.target[fold_rows], 2)]
    try:
        if best_deep:
            from mlcycle.run.loader import Run

            run = Run(comparison.fold_dir(by_name[best_deep], 0))
            model = run.load_model("best")
            mean, std = run.data_info["mean"], run.data_info["std"]
            images = [pool.image(r) for r in picks]
            x = np.stack(images).astype(np.float32) / 255
            x = (x - np.array(mean, dtype=np.float32)) / np.array(std, dtype=np.float32)
            import torch

            inputs = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
            targets = torch.from_numpy(pool.target[picks]).long()
            figure = imp.cnn_attributions(model, inputs, targets, images, pool.class_names)
            save(figure, figures / f"attributions_{best_deep}.png")
            written[best_deep] = f"figures/attributions_{best_deep}.png"
        if best_classic:
            candidate = by_name[best_classic]
            result = comparison.run_classic(candidate, 0)
            features = comparison.pixels()
            size = comparison.spec.classic_size
            from mlcycle.selection.pool import shrink

            shape = shrink(comparison.pool.image(0), size).shape
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                maps = imp.pixel_permutation_importance(
                    result["model"], features[fold_rows], pool.target[fold_rows], shape
                )
            mean_image = features[fold_rows].mean(axis=0).reshape(shape)
            mean_image = mean_image.mean(axis=-1) if mean_image.ndim == 3 else mean_image
            figure = imp.importance_map_figure({best_classic: maps}, mean_image)
            save(figure, figures / f"permutation_importance_{best_classic}.png")
            written[best_classic] = f"figures/permutation_importance_{best_classic}.png"
    except Exception as exc:  # figures are a help, not the result
        print(f"warning: importance maps not drawn: {type(exc).__name__}: {exc}", file=sys.stderr)
    return written


ELIGIBLE_MARGIN = 0.05  # without an objective: within 5 points of the best candidate


def eligible(rows: list[dict[str, Any]], oof: dict[str, np.ndarray], mode: str) -> list[str]:
    """Candidates good enough to short-list: those passing the objective's quality gate when
    there is one (else within ``ELIGIBLE_MARGIN`` of the best mean); never one that did not
    learn, however different its errors."""
    done = [r for r in rows if r["candidate"] in oof and r.get("mean") is not None]
    if any(r.get("gate") is not None for r in done):
        return [r["candidate"] for r in done if r.get("gate")]
    if mode == "max":
        best = max(r["mean"] for r in done)
        return [r["candidate"] for r in done if r["mean"] >= best - ELIGIBLE_MARGIN]
    best = min(r["mean"] for r in done)
    return [r["candidate"] for r in done if r["mean"] <= best + ELIGIBLE_MARGIN]


def write_shortlist(
    comparison: Any, oof: dict[str, np.ndarray], rows: list[dict[str, Any]], mode: str
) -> dict[str, Any] | None:
    """``shortlist.yaml`` over every family; and, when it holds classic models (which
    ensemble.py cannot put in an ONNX graph), ``shortlist_deep.yaml`` over deep ones only."""
    names = eligible(rows, oof, mode)
    if not names:
        return None
    chosen = write_one(comparison, {n: oof[n] for n in names}, "shortlist.yaml")
    by_name = {c.name: c for c in comparison.spec.candidates}
    deep = [n for n in names if by_name[n].kind == "deep"]
    if getattr(comparison.pool, "table", False):  # every member of a table's shortlist is a run
        return chosen
    if any(by_name[n].kind != "deep" for n in chosen["members"]) and len(deep) >= 2:
        chosen["deep"] = write_one(comparison, {n: oof[n] for n in deep}, "shortlist_deep.yaml")
    return chosen


def write_one(comparison: Any, oof: dict[str, np.ndarray], file: str) -> dict[str, Any]:
    pool = comparison.pool
    chosen = analysis.shortlist(oof, pool.target, len(pool.class_names))
    by_name = {c.name: c for c in comparison.spec.candidates}
    members = []
    for name in chosen["members"]:
        candidate = by_name[name]
        entry: dict[str, Any] = {"name": name, "family": candidate.kind}
        if candidate.kind == "deep" or getattr(pool, "table", False):
            entry["runs"] = [
                str(comparison.fold_dir(candidate, f)) for f in range(comparison.spec.folds)
            ]
        if candidate.kind != "deep":
            entry["estimator"] = candidate.estimator
        entry["oof"] = str(comparison.out / "candidates" / name / "oof.npz")
        members.append(entry)
    document = {
        "comparison": str(comparison.out),
        "rule": chosen["rule"] + " Candidates: " + ELIGIBLE_RULE,
        "members": members,
        "ensemble_f1": chosen["ensemble_f1"],
        "best_single": chosen["best_single"],
        "best_single_f1": chosen["best_single_f1"],
        "trace": chosen["trace"],
    }
    (comparison.out / file).write_text(yaml.safe_dump(document, sort_keys=False))
    return {**chosen, "file": file}


ELIGIBLE_RULE = (
    "those passing the objective's quality gate (metric and per-class minimums), or without "
    "an objective those within 0.05 of the best mean."
)


def notes_for(comparison: Any, command: str, clock: Stopwatch, shortlisted: Any) -> list[str]:
    pool = comparison.pool
    if getattr(pool, "table", False):
        table_notes = tables_report.notes(comparison, clock.seconds, fold_seconds(comparison))
        notes = [f"Command: {command}", *table_notes]
    else:
        notes = image_notes(comparison, command, clock)
    if comparison.objective is not None:
        notes.append(f"Objective: {objective_words(comparison.objective)}.")
    if shortlisted and "ensemble_rmse" in shortlisted:
        notes.append(
            f"Shortlist ({shortlisted['rule']}): {', '.join(shortlisted['members'])}; out-of-fold "
            f"mean prediction rmse {shortlisted['ensemble_rmse']:.4f} vs best single "
            f"{shortlisted['best_single']} {shortlisted['best_single_rmse']:.4f}."
        )
    elif shortlisted:
        notes.append(
            f"Shortlist ({shortlisted['rule']}): {', '.join(shortlisted['members'])}; out-of-fold "
            f"soft vote {shortlisted['ensemble_f1']:.4f} vs best single "
            f"{shortlisted['best_single']} {shortlisted['best_single_f1']:.4f}."
        )
    return notes


def image_notes(comparison: Any, command: str, clock: Stopwatch) -> list[str]:
    spec, pool = comparison.spec, comparison.pool
    index = comparison.data.index
    return [
        f"Command: {command}",
        f"{len(pool)} train+val images, {len(pool.class_names)} classes, {spec.folds} stratified "
        f"folds (seed {spec.fold_seed}); the test split ({len(index.positions['test'])} images) "
        "was sealed: no candidate predicted or scored it.",
        f"Data: {index.layout}; fingerprint {comparison.data.fingerprint[:16]}.",
        "Metric: mean and standard deviation over folds of each fold's out-of-fold score; "
        "latency: milliseconds per image from uint8 images to probabilities on one CPU thread, "
        "batches of 64 (the same for every family); size: saved weights (deep) or pickled model (classic).",
        f"Wall time of this command {clock.seconds:.0f} s; the candidate-folds took "
        f"{fold_seconds(comparison):.0f} s when they ran (a re-run resumes finished ones).",
    ]


def fold_seconds(comparison: Any) -> float:
    """The wall time every candidate-fold took when it ran, from its selection_fold.json."""
    total = 0.0
    for path in (comparison.out / "candidates").glob("*/fold*/selection_fold.json"):
        total += float(json.loads(path.read_text()).get("wall_s") or 0.0)
    return total


def objective_words(objective: Any) -> str:
    parts = [f"{objective.metric} {'>=' if objective.direction == 'max' else '<='} {objective.min}"]
    if objective.min is None:
        parts = [f"rank by {objective.metric}"]
    if objective.per_class_min is not None:
        parts.append(f"every class >= {objective.per_class_min}")
    if objective.max_latency_ms is not None:
        parts.append(f"latency <= {objective.max_latency_ms} ms")
    if objective.max_size_mb is not None:
        parts.append(f"size <= {objective.max_size_mb} MB")
    return "; ".join(parts)


def figure_list(figures: Path, found: dict[str, Any]) -> list[tuple[str, Path]]:
    items = [
        ("Metric by candidate", figures / "leaderboard.png"),
        ("Per-class F1 by model (out of fold)", figures / "per_class_f1.png"),
        ("Error correlation: disagreement and double fault", figures / "error_correlation.png"),
    ]
    for name in found.get("confusion", {}):
        items.append((f"Out-of-fold confusion: {name}", figures / f"confusion_{name}.png"))
    for name in found.get("residual_figures", []):
        items.append((f"Out-of-fold residuals: {name}", figures / f"residuals_{name}.png"))
    for name in found.get("galleries", []):
        items.append((f"Highest-loss images: {name}", figures / f"highest_loss_{name}.png"))
    for name, rel in found.get("importance", {}).items():
        items.append((f"Variable importance: {name}", figures.parent / rel))
    return items


def html_tables(found: dict[str, Any]) -> list[tuple[str, list[str], list[list[Any]]]]:
    pairs = found.get("confused_pairs") or []
    if not pairs:
        return []
    values = [[p["true"], p["predicted"], p["count"]] for p in pairs]
    return [
        (
            "Most confused class pairs (out of fold, all models)",
            ["true", "predicted", "count"],
            values,
        )
    ]
