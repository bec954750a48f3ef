"""How label-issues names, shows and embeds labelled images (the ``classification`` kind)."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from PIL import Image

from mlcycle.data.layout import absolute
from mlcycle.images.selection.deep import embed_rows
from mlcycle.selection.label_issues.views import ItemView

THUMBNAIL = 96  # pixels per side at most; smaller images are enlarged (pixelated) to it


def thumbnail_uri(image: np.ndarray) -> str:
    """A uint8 HxW[xC] image as a PNG data URI, at most THUMBNAIL pixels per side."""
    pixels = image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image
    picture = Image.fromarray(np.ascontiguousarray(pixels))
    scale = THUMBNAIL / max(picture.size)
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    picture = picture.resize(size, Image.NEAREST if scale > 1 else Image.BILINEAR)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class ImageView(ItemView):
    """An image is named by its path and shown as a thumbnail of the data's resized image."""

    key_columns = ("path",)

    def positions(self, data: Any) -> dict[str, list[int]]:
        return {files[0][0]: [p] for p, files in enumerate(data.index.files)}

    def ids(self, data: Any, position: int) -> dict[str, Any]:
        return {"path": str(absolute(data.index.files[position][0][0]))}

    def show(self, data: Any, position: int) -> dict[str, Any]:
        return {"thumbnail": thumbnail_uri(data.raw_image(position))}

    def features(self, data: Any, positions: list[int], model: Any = None) -> np.ndarray | None:
        """A run's network's embeddings (the input of its last Linear layer); none without."""
        if model is None:
            return None
        files = data.index.files
        return embed_rows(model, data, {files[p][0][0]: i for i, p in enumerate(positions)})


VIEW = ImageView()
