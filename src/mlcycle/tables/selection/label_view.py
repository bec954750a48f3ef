"""How label-issues names, shows and embeds table rows (the ``tabular`` kind)."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlcycle.selection.label_issues.views import ItemView

SHOWN_COLUMNS = 12  # a row's first columns in the gallery


class RowView(ItemView):
    """A row is named by its number in the table as read (and ``data.id_column``), shown by
    its values, and embedded by the fitted pipeline's features."""

    key_columns = ("row",)

    def positions(self, data: Any) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        for position, key in enumerate(data.table.keys):
            found.setdefault(key, []).append(position)
        return found

    def ids(self, data: Any, position: int) -> dict[str, Any]:
        return {"row": data.table.rows[position]}

    def show(self, data: Any, position: int) -> dict[str, Any]:
        row = data.table.frame.iloc[position]
        target = data.schema.target
        shown = [(str(c), row[c]) for c in row.index if c != target][:SHOWN_COLUMNS]
        return {"cells": shown}

    def features(self, data: Any, positions: list[int], model: Any = None) -> np.ndarray | None:
        rows = data.table.frame.iloc[positions].reset_index(drop=True)
        return np.asarray(data.pipeline.transform(rows), dtype=np.float32)


VIEW = RowView()
