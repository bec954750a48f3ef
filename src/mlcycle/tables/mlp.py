"""The tabular network: numeric features and an embedding per categorical code column, then an
MLP. A plain ``nn.Module`` (no Lightning), so export traces it as it is."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F


def embedding_size(cardinality: int, largest: int) -> int:
    """Columns of a category's embedding: fastai's rule of thumb, at most ``largest``."""
    return max(1, min(largest, round(1.6 * cardinality**0.56)))


class RowBatchNorm(nn.BatchNorm1d):
    """BatchNorm1d that normalizes a one-row training batch (the last batch of an epoch can be
    one row) with its running statistics instead of failing."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] == 1:
            return F.batch_norm(
                x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
            )
        return super().forward(x)


class TabularMLP(nn.Module):
    """``x`` [N, F] float32: ``x[:, :num_numeric]`` numbers, ``x[:, num_numeric:]`` one integer
    code per categorical column (0 = unseen or missing; a code past a column's cardinality
    counts as 0). Returns [N, outputs].

    Args:
        num_numeric: numeric columns at the start of ``x``.
        cardinalities: codes per categorical column (categories + 1), in column order.
        outputs: output units (classes, or 1 for regression).
        hidden: widths of the hidden layers.
        dropout: dropout after every hidden layer (0: none).
        batch_norm: batch normalization after every hidden linear layer.
        max_embedding: the widest embedding of a categorical column.
    """

    def __init__(
        self,
        num_numeric: int,
        cardinalities: Sequence[int],
        outputs: int,
        hidden: Sequence[int] = (128, 64),
        dropout: float = 0.1,
        batch_norm: bool = True,
        max_embedding: int = 16,
    ) -> None:
        super().__init__()
        self.num_numeric = int(num_numeric)
        self.cardinalities = [int(n) for n in cardinalities]
        self.embeddings = nn.ModuleList(
            nn.Embedding(n, embedding_size(n, max_embedding)) for n in self.cardinalities
        )
        width = self.num_numeric + sum(e.embedding_dim for e in self.embeddings)
        if width == 0:
            raise ValueError("a tabular network needs at least one feature column")
        layers: list[nn.Module] = []
        for size in hidden:
            layers.append(nn.Linear(width, size))
            if batch_norm:
                layers.append(RowBatchNorm(size))
            layers.append(nn.ReLU(inplace=True))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = [x[:, : self.num_numeric]]
        if self.cardinalities:
            codes = x[:, self.num_numeric :].long()
            for i, (embedding, n) in enumerate(
                zip(self.embeddings, self.cardinalities, strict=True)
            ):
                code = codes[:, i]
                parts.append(embedding(torch.where((code >= 0) & (code < n), code, 0)))
        return self.head(self.body(torch.cat(parts, dim=1)))
