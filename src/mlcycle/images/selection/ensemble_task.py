"""The ensemble as a task: every member network and the combination in one ``nn.Module``.

:class:`EnsembleTask` is an ordinary classification task to the rest of mlcycle: ``Run``
loads it from ``checkpoints/best.ckpt`` (rebuilt from its plain hyperparameters), evaluate.py
scores it through ``predict_step``, and export.py traces ``task.model`` (:class:`EnsembleNet`)
into one ONNX graph and one TorchScript file. The net maps a batch normalized with the
ensemble's mean/std (``data.json``) to logits whose softmax is the ensemble's probabilities.

A member is a *bag*: one network (``--runs``) or the fold models of a cross-validated
candidate (``--shortlist``), whose probabilities are averaged. A network trained with another
mean/std re-normalizes its input inside the graph.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from mlcycle.core.errors import UserError
from mlcycle.models import build_model
from mlcycle.tasks.base import Monitor, Task


def log_mean_exp(values: torch.Tensor, log_weights: torch.Tensor) -> torch.Tensor:
    """``log(sum_k w_k exp(values[k]))`` over dim 0, stable (max subtracted first) and spelled
    out in plain ops, so eager and ONNX Runtime compute the same numbers."""
    shifted = values + log_weights.view(-1, 1, 1)
    top = shifted.amax(dim=0)
    return top + (shifted - top).exp().sum(dim=0).log()


class Renormalize(nn.Module):
    """``(x * std_e + mean_e - mean_m) / std_m``: the ensemble's normalization to a member's."""

    def __init__(self, ensemble: tuple[list[float], list[float]], member: tuple[list, list]):
        super().__init__()
        (mean_e, std_e), (mean_m, std_m) = ensemble, member
        scale = [se / sm for se, sm in zip(std_e, std_m, strict=True)]
        shift = [(me - mm) / sm for me, mm, sm in zip(mean_e, mean_m, std_m, strict=True)]
        self.identity = all(s == 1 for s in scale) and all(s == 0 for s in shift)
        self.register_buffer("scale", torch.tensor(scale).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("shift", torch.tensor(shift).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.identity else x * self.scale + self.shift


class Bag(nn.Module):
    """One member: the mean probabilities of its networks."""

    def __init__(self, networks: list[nn.Module], inputs: list[Renormalize]) -> None:
        super().__init__()
        self.networks = nn.ModuleList(networks)
        self.inputs = nn.ModuleList(inputs)
        size = len(networks)
        self.register_buffer("log_share", torch.full((size,), -math.log(size)), persistent=False)

    def log_probs(self, x: torch.Tensor) -> torch.Tensor:
        outs = [net(norm(x)).float().log_softmax(dim=1) for net, norm in self.pairs()]
        if len(outs) == 1:
            return outs[0]
        return log_mean_exp(torch.stack(outs), self.log_share)

    def probs(self, x: torch.Tensor) -> torch.Tensor:
        outs = [net(norm(x)).float().softmax(dim=1) for net, norm in self.pairs()]
        return outs[0] if len(outs) == 1 else torch.stack(outs).mean(dim=0)

    def pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        return list(zip(self.networks, self.inputs, strict=True))


class EnsembleNet(nn.Module):
    """Members and combination; ``forward``: normalized NCHW -> ensemble logits.

    Soft and weighted: the log of the weighted mean probabilities. Stacking: the meta-model's
    linear logits over the members' probabilities. Always in eval mode: ``train()`` is refused
    silently, so batch norm and dropout never make it non-deterministic."""

    def __init__(self, bags: list[Bag], combination: dict[str, Any]) -> None:
        super().__init__()
        self.bags = nn.ModuleList(bags)
        self.method = combination["method"]
        for p in self.parameters():
            p.requires_grad_(False)
        if self.method == "stacking":
            weight = torch.tensor(combination["coef"], dtype=torch.float32)
            bias = torch.tensor(combination["intercept"], dtype=torch.float32)
            self.register_buffer("meta_weight", weight, persistent=False)
            self.register_buffer("meta_bias", bias, persistent=False)
        else:
            weights = torch.tensor(combination["weights"], dtype=torch.float32)
            self.register_buffer("log_weights", weights.log(), persistent=False)
        self.train(False)

    def train(self, mode: bool = True) -> EnsembleNet:
        return super().train(False)

    def member_probs(self, x: torch.Tensor) -> torch.Tensor:
        """Every member's probabilities, (M, N, C)."""
        return torch.stack([bag.probs(x) for bag in self.bags])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.method == "stacking":
            joined = torch.cat([bag.probs(x) for bag in self.bags], dim=1)
            return joined @ self.meta_weight.t() + self.meta_bias
        logs = torch.stack([bag.log_probs(x) for bag in self.bags])
        return log_mean_exp(logs, self.log_weights)


class EnsembleTask(Task):
    """An ensemble of trained classification runs, built by ``ensemble.py`` (never trained).

    Args:
        members: one dict per member: ``name`` and ``networks``, each network a dict with
            ``arch``, ``arch_options``, ``mean``, ``std`` (its training normalization) and
            ``run`` (where it came from).
        combination: ``method`` (soft, weighted, stacking) with ``weights`` or ``coef`` and
            ``intercept`` (see ``mlcycle.selection.ensemble.combine``).
        mean: the ensemble's input normalization mean (``data.json``).
        std: the ensemble's input normalization std.
    """

    task_name = "classification"  # evaluate.py and export.py treat it as any classifier
    monitor = Monitor("val/f1", "max")

    def __init__(
        self,
        members: list[dict[str, Any]],
        combination: dict[str, Any],
        mean: list[float],
        std: list[float],
        arch: str = "ensemble",
        **kwargs: Any,
    ) -> None:
        super().__init__(arch=arch, **kwargs)
        self.model = self.build(combination)

    def build(self, combination: dict[str, Any]) -> EnsembleNet:
        hp = self.hparams
        bags = []
        for member in hp.members:
            networks = [
                build_model(n["arch"], hp.in_channels, hp.num_classes, options=n["arch_options"])
                for n in member["networks"]
            ]
            inputs = [
                Renormalize((hp.mean, hp.std), (n["mean"], n["std"])) for n in member["networks"]
            ]
            bags.append(Bag(networks, inputs))
        return EnsembleNet(bags, combination)

    def set_combination(self, combination: dict[str, Any]) -> None:
        """Replace the combination, keeping the member networks (and record it in hparams)."""
        self.hparams["combination"] = combination
        self.model = EnsembleNet(list(self.model.bags), combination)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        raise UserError("an ensemble is not trained; build it with scripts/ensemble.py")

    def predict_step(self, batch: Any, batch_idx: int) -> dict[str, torch.Tensor]:
        """``probs`` (N, K) ensemble probabilities, ``target`` (N,), ``index`` (N,)."""
        x, y, index = batch
        return {"probs": self(x).float().softmax(dim=1), "target": y, "index": index}
