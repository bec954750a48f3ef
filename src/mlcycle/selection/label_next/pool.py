"""The unlabeled pool, scored: image files in folders, a table model's CSV rows, or the
prediction store's recent rows without feedback. Each item gets every member's class
probabilities and an embedding (the penultimate output where the graph has one, else the
probability vector)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlcycle.core.errors import UserError
from mlcycle.edge.model import UsageError, is_batched
from mlcycle.edge.predict import collect, read_images
from mlcycle.selection.label_next.members import Member

BATCH = 64


@dataclass
class Pool:
    """Items in the pool's order. ``members`` [M, N, C]; ``embeddings`` [N, D]."""

    names: list[str]
    members: np.ndarray
    class_names: list[str]
    embeddings: np.ndarray
    embedding_kind: str  # "penultimate output" or "probabilities"
    ids: list[str | None]  # prediction ids of store rows (None for files)
    images: list[Path | None]  # files shown in the gallery
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (item, why)


def run_member(member: Member, inputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
    """``member`` on preprocessed images: one call per batch, or per image when its graph
    takes one image at a time."""
    if is_batched(member.meta):
        return member.predict(np.stack(inputs))
    outs = [member.predict(x[None]) for x in inputs]
    features = [f for _, f in outs]
    stacked = None if features[0] is None else np.concatenate(features)
    return np.concatenate([p for p, _ in outs]), stacked


def images_pool(members: list[Member], inputs: list[str]) -> Pool:
    """Every image file under ``inputs`` (files or folders), scored by every member."""
    paths = list(collect(inputs))
    if not paths:
        raise UserError(f"no image files in {' '.join(inputs)}; pass a folder of images")
    names: list[str] = []
    skipped: list[tuple[str, str]] = []
    probs: list[list[np.ndarray]] = [[] for _ in members]
    features: list[np.ndarray] = []
    for start in range(0, len(paths), BATCH):
        chunk = paths[start : start + BATCH]
        results, inputs_0, _, _ = read_images(chunk, members[0].meta["input"])
        skipped += [(r["path"], r["error"]) for r in results if "error" in r]
        kept = [Path(r["path"]) for r in results if "error" not in r]
        if not kept:
            continue
        names += [str(p.absolute()) for p in kept]  # a filled CSV works from any folder
        for m, member in enumerate(members):
            own = inputs_0 if m == 0 else read_images(kept, member.meta["input"])[1]
            p, f = run_member(member, own)
            probs[m].append(p)
            if m == 0 and f is not None:
                features.append(f)
    if not names:
        raise UserError(f"none of the {len(paths)} files in {' '.join(inputs)} is a readable image")
    stacked = np.stack([np.concatenate(p) for p in probs])
    return with_embeddings(
        Pool(
            names,
            stacked,
            members[0].class_names,
            np.empty(0),
            "",
            [None] * len(names),
            [Path(n) for n in names],
            skipped,
        ),  # fmt: skip
        np.concatenate(features) if features else None,
    )


def with_embeddings(pool: Pool, features: np.ndarray | None) -> Pool:
    """The pool with its embeddings: the penultimate output, else the mean probabilities."""
    if features is not None and len(features) == len(pool.names):
        pool.embeddings, pool.embedding_kind = features, "penultimate output"
    else:
        pool.embeddings, pool.embedding_kind = pool.members.mean(axis=0), "probabilities"
    return pool


def rows_pool(members: list[Member], files: list[str]) -> Pool:
    """A table model's CSV rows, scored by every member (predict.py's reading of rows)."""
    from mlcycle.edge.predict_rows import predict_table, table_session

    names: list[str] = []
    skipped: list[tuple[str, str]] = []
    probs: list[list[list[float]]] = [[] for _ in members]
    for file in files:
        if not Path(file).is_file():
            raise UserError(f"--csv '{file}' does not exist")
        for m, member in enumerate(members):
            try:
                results = predict_table(table_session(member.path), member.meta, Path(file), BATCH)
            except UsageError as exc:
                raise UserError(str(exc)) from exc
            id_column = member.meta["input"].get("id_column")
            for r in results:
                name = f"{Path(file).name} row {r['row']}"
                name = f"{name} ({id_column} {r[id_column]})" if r.get(id_column) else name
                if "error" in r:
                    skipped += [(name, r["error"])] if m == 0 else []
                    continue
                names += [name] if m == 0 else []
                probs[m].append([r["probabilities"][c] for c in member.class_names])
    if not names:
        raise UserError(f"no row of {' '.join(files)} could be scored")
    stacked = np.asarray(probs, dtype=np.float64)
    pool = Pool(names, stacked, members[0].class_names, np.empty(0), "", [None] * len(names),
                [None] * len(names), skipped)  # fmt: skip
    return with_embeddings(pool, None)


def stored_vector(top_k: Any, class_names: list[str]) -> np.ndarray | None:
    """A store row's ``top_k`` (a list of class and probability, the best first) as a vector
    over ``class_names``; the mass of unlisted classes is shared evenly among them. None when
    the row holds no class probabilities (masks, boxes, labels) or names other classes."""
    listed = json.loads(top_k) if isinstance(top_k, str) else top_k
    if not isinstance(listed, list) or not listed or not isinstance(listed[0], dict):
        return None
    if any("class" not in e or "probability" not in e for e in listed):
        return None
    index = {c: i for i, c in enumerate(class_names)}
    if any(str(e["class"]) not in index for e in listed):
        return None
    vector = np.full(len(class_names), np.nan)
    for entry in listed:
        vector[index[str(entry["class"])]] = float(entry["probability"])
    rest = np.isnan(vector)
    vector[rest] = max(0.0, 1.0 - np.nansum(vector)) / rest.sum() if rest.any() else 0.0
    return vector


def store_classes(rows: list[dict[str, Any]]) -> list[str]:
    """The class names the rows' ``top_k`` lists name, sorted (when no model names them)."""
    found: set[str] = set()
    for row in rows:
        listed = json.loads(row["top_k"]) if isinstance(row.get("top_k"), str) else None
        if isinstance(listed, list):
            found.update(str(e["class"]) for e in listed if isinstance(e, dict) and "class" in e)
    return sorted(found)


def store_pool(
    url: str, since: Any, until: Any, class_names: list[str] | None, version: str | None
) -> Pool:
    """The store's rows in [since, until) with no feedback yet (of model ``version`` when
    given), from the probabilities each row kept (``top_k``)."""
    from mlcycle.monitor.judge import read_rows

    rows = [r for r in read_rows(url, since, until) if r.get("label") is None]
    if version is not None:
        rows = [r for r in rows if r["model_version"] == version]
    if not rows:
        raise UserError(f"the prediction store '{url}' has no unlabeled rows in that range")
    names = class_names or store_classes(rows)
    kept, vectors, skipped = [], [], []
    for row in rows:
        vector = stored_vector(row.get("top_k"), names)
        name = str(row.get("input_name") or row["id"])
        if vector is None:
            skipped.append((name, "no class probabilities stored"))
            continue
        kept.append(row)
        vectors.append(vector)
    if not kept:
        raise UserError(f"no row of '{url}' in that range kept class probabilities (top_k)")
    images = [Path(str(r["input_name"])) for r in kept]
    pool = Pool(
        [str(r.get("input_name") or r["id"]) for r in kept],
        np.asarray(vectors)[None],
        names,
        np.empty(0),
        "",
        [str(r["id"]) for r in kept],
        [p if r["input_name"] and p.is_file() else None for p, r in zip(images, kept, strict=True)],
        skipped,
    )
    return with_embeddings(pool, None)
