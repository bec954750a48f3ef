"""HTML tables of the analysis, shared by the HTML page and the notebook."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from mlcycle.core.html import render
from mlcycle.quality.eda.analysis import EDA

LIST_LIMIT = 20  # paths listed per finding; the rest are counted


def table(header: Sequence[Any], rows: Sequence[Sequence[Any]], caption: str = "") -> str:
    """An HTML table (``templates/quality/table.html``); cells formatted by :func:`_fmt`."""
    return render(
        "quality/table.html",
        header=[str(h) for h in header],
        rows=[[_fmt(c) for c in row] for row in rows],
        caption=caption,
    )


def paragraph(text: str, note: bool = False, lead: str = "", bold: str = "") -> str:
    """An HTML paragraph: ``lead``, ``bold`` in bold, then ``text``; highlighted as a note."""
    return render("quality/paragraph.html", text=text, note=note, lead=lead, bold=bold)


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def provenance(eda: EDA) -> str:
    if eda.include_test:
        test = "READ: --include-test was given, so test images are analysed and shown below"
    else:
        test = f"not read ({eda.skipped_test} files; only hashed to learn the splits)"
    rows = [
        ("configs", ", ".join(eda.configs)),
        ("overrides", " ".join(eda.overrides) or "none"),
        ("task", eda.task),
        ("source", eda.source),
        ("splits analysed", ", ".join(eda.splits_read)),
        ("test split", test),
        ("images analysed", f"{len(eda.items)} (sample cap {eda.sample or 'none'}, {eda.sampled_out} left out)"),
        ("not decodable", len(eda.not_decoded)),
        ("created", f"{eda.created} in {eda.seconds}s"),
    ]  # fmt: skip
    return table(("", ""), rows)


def counts(eda: EDA) -> str:
    splits = list(eda.all_counts)
    rows = []
    for name in eda.class_names:
        row = [eda.all_counts[s].get(name, 0) for s in splits]
        rows.append([name, *row, sum(row)])
    totals = [sum(eda.all_counts[s].values()) for s in splits]
    rows.append(["all", *totals, sum(totals)])
    caption = f"{eda.count_unit} per class and split (every file)"
    return table(["class", *splits, "total"], rows, caption)


def file_types(eda: EDA) -> str:
    rows = [(ext, n) for ext, n in eda.file_types.items()]
    modes = Counter(f"{it.facts.format} {it.facts.mode}" for it in eda.items)
    return table(("extension", "files"), rows, "file types (analysed splits)") + table(
        ("format and mode", "images"), modes.most_common(), "decoded formats"
    )


def sizes(eda: EDA) -> str:
    if not eda.items:
        return ""
    w = np.array([it.facts.width for it in eda.items])
    h = np.array([it.facts.height for it in eda.items])
    b = np.array([it.facts.bytes for it in eda.items])
    rows = [
        (name, int(v.min()), float(np.median(v)), int(v.max()))
        for name, v in (("width px", w), ("height px", h), ("file bytes", b))
    ]
    rows.append(
        ("aspect ratio w/h", float((w / h).min()), float(np.median(w / h)), float((w / h).max()))
    )
    common = Counter(zip(w.tolist(), h.tolist(), strict=True)).most_common(5)
    caption = "most common sizes: " + ", ".join(f"{a}x{b} ({n})" for (a, b), n in common)
    return table(("", "min", "median", "max"), rows, caption)


def channel_stats(eda: EDA) -> str:
    """Per-channel mean and std over all pixels (0..1), per split and overall."""
    rows = []
    for split in [*eda.splits_read, "all"]:
        chosen = [it.facts for it in eda.items if split == "all" or it.split == split]
        if not chosen:
            continue
        px = np.array([f.width * f.height for f in chosen], dtype=float)[:, None]
        mean = np.array([f.channel_mean for f in chosen])
        std = np.array([f.channel_std for f in chosen])
        total = (mean * px).sum(0) / px.sum()
        pooled = np.sqrt(((std**2 + mean**2) * px).sum(0) / px.sum() - total**2)
        rows.append(
            [split, len(chosen), *np.round(total, 4).tolist(), *np.round(pooled, 4).tolist()]
        )
    header = ["split", "images", "mean R", "mean G", "mean B", "std R", "std G", "std B"]
    return table(header, rows, "per-channel mean and std of pixel values (0..1)")


def _paths(files: list[dict]) -> str:
    return " | ".join(f"{f['path']} ({f['split']}, {f['label']})" for f in files)


def findings(eda: EDA) -> str:
    f = eda.findings
    rows = [
        ("exact duplicate groups", len(f["exact_duplicates"])),
        ("near-duplicate pairs", len(f["near_duplicates"])),
        ("leakage (across splits)", len(f["leakage"])),
        ("same image, different labels", len(f["label_conflicts"])),
        ("outliers (brightness, contrast, size, aspect)", len(f["outliers"])),
    ]
    out = table(("finding (analysed images)", "count"), rows)
    lists = [
        ("leakage", [(e["kind"], e["distance"], _paths(e["files"])) for e in f["leakage"]]),
        ("label conflicts", [(e["kind"], e["distance"], _paths(e["files"])) for e in f["label_conflicts"]]),
        ("exact duplicates", [("exact", 0, " | ".join(g)) for g in f["exact_duplicates"]]),
        ("near duplicates", [("near", e["distance"], " | ".join(e["files"])) for e in f["near_duplicates"]]),
    ]  # fmt: skip
    for name, rows in lists:
        if rows:
            more = f" (first {LIST_LIMIT} of {len(rows)})" if len(rows) > LIST_LIMIT else ""
            out += table(("kind", "distance", "files"), rows[:LIST_LIMIT], name + more)
    if f["outliers"]:
        rows = [(o["measure"], o["value"], o["z"], o["path"], o["split"]) for o in f["outliers"]]
        out += table(
            ("measure", "value", "robust z", "path", "split"), rows[:LIST_LIMIT], "outliers"
        )
    return out


def attributes(eda: EDA) -> str:
    if not eda.attributes:
        return paragraph("No extra columns: the source lists only paths and labels.")
    rows = []
    for a in eda.attributes:
        if a.kind == "numeric":
            s = a.summary
            summary = f"min {s['min']}, median {s['median']}, mean {s['mean']}, max {s['max']}"
        else:
            top = ", ".join(f"{v} ({n})" for v, n in a.summary["top"][:5])
            summary = f"{a.summary['distinct']} distinct; {top}"
        assoc = (
            "" if a.label_association is None else f"{a.label_association:.3f} ({a.association})"
        )
        rows.append((a.name, a.kind, f"{100 * a.missing:.1f}%", summary, assoc))
    out = table(("attribute", "type", "missing", "distribution", "association with label"), rows)
    corr = eda.attribute_correlations
    if len(corr.get("names", [])) > 1:
        out += table(
            ["Pearson", *corr["names"]],
            [[n, *row] for n, row in zip(corr["names"], corr["pearson"], strict=True)],
            "correlations of numeric attributes",
        )
    return out
