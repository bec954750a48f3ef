"""The seam between label-issues and the kinds of data: how an item is named and shown.

A kind of data registers an :class:`ItemView` in :data:`ITEM_VIEWS` under its ``data_kind``
(entry-point group ``mlcycle.label_views``; mlcycle's own: images' classification data and
tables). label-issues never tests a data module's class.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from mlcycle.core.errors import UserError
from mlcycle.core.registry import Registry


class ItemView:
    """How label-issues names, shows and embeds the items of one kind of data."""

    key_columns: ClassVar[tuple[str, ...]] = ()  # label_issues.csv's columns naming an item

    def positions(self, data: Any) -> dict[str, list[int]]:
        """A comparison's pool key (``oof.npz``'s ``paths``) -> the data's positions."""
        raise NotImplementedError

    def ids(self, data: Any, position: int) -> dict[str, Any]:
        """The item's ``key_columns`` values: what a relabel file names it by."""
        raise NotImplementedError

    def show(self, data: Any, position: int) -> dict[str, Any]:
        """The gallery's view: ``{"thumbnail": data URI}`` or ``{"cells": [(column, value)]}``."""
        raise NotImplementedError

    def features(self, data: Any, positions: list[int], model: Any = None) -> np.ndarray | None:
        """Embeddings of the items (None: none of its own); ``model``: a run's task, if any."""
        return None


ITEM_VIEWS: Registry[ItemView] = Registry(
    "kind of data label-issues shows", "data_kind", "mlcycle.label_views"
)


def view_of(data: Any) -> ItemView:
    """The view of the kind ``data`` declares (its ``data_kind``)."""
    kind = getattr(data, "data_kind", None)
    if kind and kind in ITEM_VIEWS:
        return ITEM_VIEWS.get(kind)
    raise UserError(
        f"label-issues does not show {kind or type(data).__name__} data; it shows the kinds "
        f"{', '.join(ITEM_VIEWS.names())} (a plugin adds one in 'mlcycle.label_views')"
    )
