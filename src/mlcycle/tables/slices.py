"""What a table's rows can be sliced by: its own columns (the target aside). By default the
categorical and yes/no feature columns; a numeric column named on the command line is cut into
quantile bins."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from mlcycle.evaluators.slice_columns import SliceColumns

DEFAULT_KINDS = ("categorical", "boolean")


class TableSlices(SliceColumns):
    unit = "rows"

    def names(self, data: Any) -> list[str]:
        target = data.schema.target
        return [str(c) for c in data.table.frame.columns if c != target]

    def defaults(self, data: Any) -> list[str]:
        return data.schema.names_of(*DEFAULT_KINDS)

    def values(self, data: Any, positions: Sequence[int], names: Sequence[str]) -> dict[str, list]:
        frame = data.table.frame.iloc[list(positions)]
        return {n: [None if pd.isna(v) else v for v in frame[n].tolist()] for n in names}


TABLE_SLICES = TableSlices()
