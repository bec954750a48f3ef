"""What label-next writes: ``to_label.csv`` (one row per pick, an empty ``label`` column to
fill) and ``to_label.html`` (the picks as a gallery of thumbnails, self-contained)."""

from __future__ import annotations

import base64
import csv
import io
from pathlib import Path
from typing import Any

from PIL import Image

from mlcycle.core.html import render
from mlcycle.selection.label_next.pick import Pick
from mlcycle.selection.label_next.pool import Pool

COLUMNS = ("rank", "path", "predicted", "score", "reason", "prediction_id", "label")
THUMBNAIL = 192  # pixels, the longer side


def thumbnail(path: Path | None) -> str | None:
    """A PNG data URI of the image at ``path`` (None when it cannot be read)."""
    if path is None:
        return None
    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            scale = THUMBNAIL / max(img.size)
            img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning):
        return None
    data = io.BytesIO()
    img.save(data, format="PNG")
    return "data:image/png;base64," + base64.b64encode(data.getvalue()).decode("ascii")


def write_csv(pool: Pool, picks: list[Pick], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for rank, p in enumerate(picks, start=1):
            row = [rank, pool.names[p.index], p.predicted, f"{p.score:.6f}", p.reason]
            writer.writerow([*row, pool.ids[p.index] or "", ""])


def write_outputs(pool: Pool, picks: list[Pick], out: Path, **shown: Any) -> tuple[Path, Path]:
    """``out/to_label.csv`` and ``out/to_label.html``; ``shown``: the page's source, by,
    spread, candidates and notes."""
    out.mkdir(parents=True, exist_ok=True)
    table, page = out / "to_label.csv", out / "to_label.html"
    write_csv(pool, picks, table)
    cards = [
        {
            "rank": rank,
            "name": pool.names[p.index],
            "predicted": p.predicted,
            "score": p.score,
            "reason": p.reason,
            "image": thumbnail(pool.images[p.index]),
        }
        for rank, p in enumerate(picks, start=1)
    ]
    page.write_text(
        render(
            "label_next/gallery.html",
            picks=cards,
            skipped=pool.skipped,
            embedding_kind=pool.embedding_kind,
            **shown,
        ),
        encoding="utf-8",
    )
    return table, page
