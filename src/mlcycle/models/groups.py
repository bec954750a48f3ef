"""A network's layer groups, from the input to the output, the head last: what fine-tuning
freezes, unfreezes and gives its own learning rate (``model.freeze_epochs``, ``model.lr_decay``).

Asked of any network, ours, torchvision's or timm's:

* a network with a ``layer_groups()`` method answers itself (a list of module lists, or of
  :class:`LayerGroup`);
* the body is ``network.backbone`` or ``network.encoder`` when it is the first layer with
  parameters (torchvision's segmentation and detection models, an encoder U-Net), and every
  other layer is the head;
* a timm network gives its own coarse groups (``group_matcher``: stem, stages, head);
* else the head is timm's ``get_classifier()`` (its top-level layer), or the last top-level
  layer with parameters (``fc``, ``classifier``, ``head``, ``heads``), and the rest is the body;
* the body splits into its top-level layers with parameters. A layer that holds nearly all of
  the body (``features``, ``encoder.layers``, ``trunk_output``) is opened into its own layers;
  single layers (a stem's convolution and norm) join the block that follows them.

A ResNet gives ``[conv1, bn1, layer1], [layer2], [layer3], [layer4], [fc]``; a MobileNet one
group per block of ``features`` and ``[classifier]``; a ViT one group per encoder block.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

OPEN_SHARE = 0.9  # a layer with more of the body's parameters than this is opened up


@dataclass
class LayerGroup:
    """Modules (by their names in the network) and every parameter they hold, plus loose ones."""

    names: list[str] = field(default_factory=list)
    modules: list[nn.Module] = field(default_factory=list)
    loose: list[nn.Parameter] = field(default_factory=list)

    def parameters(self) -> list[nn.Parameter]:
        params: dict[int, nn.Parameter] = {id(p): p for p in self.loose}
        for module in self.modules:
            params.update((id(p), p) for p in module.parameters())
        return list(params.values())

    def add(self, name: str, module: nn.Module) -> None:
        self.names.append(name)
        self.modules.append(module)


def layer_groups(network: nn.Module) -> list[LayerGroup]:
    """``network``'s groups, first layers first, the head last (see the module docstring).
    Every parameter is in exactly one group."""
    own = getattr(network, "layer_groups", None)
    if callable(own):
        return [g if isinstance(g, LayerGroup) else _group_of(g) for g in own()]
    if callable(getattr(network, "group_matcher", None)):
        return _timm_groups(network)
    body, body_loose, head = _split_head(network)
    groups = _split_body(body, body_loose)
    return [g for g in groups if g.parameters()] + [head]


def _timm_groups(network: nn.Module) -> list[LayerGroup]:
    """timm's own coarse groups (stem, stages or blocks, the head last)."""
    from timm.models import group_parameters  # a timm network: timm is installed

    by_id = group_parameters(network, network.group_matcher(coarse=True))
    params, modules = dict(network.named_parameters()), dict(network.named_modules())
    groups = []
    for gid in sorted(by_id):
        group = LayerGroup(loose=[params[n] for n in by_id[gid]])
        for name in by_id[gid]:
            owner = modules[name.rpartition(".")[0]]
            short = ".".join(name.split(".")[:2]).removesuffix(".weight").removesuffix(".bias")
            if short not in group.names:
                group.names.append(short)
            if not any(True for _ in owner.children()) and owner not in group.modules:
                group.modules.append(owner)  # a leaf layer (a norm): its mode follows the group
        groups.append(group)
    return groups


def _group_of(modules: list[nn.Module]) -> LayerGroup:
    group = LayerGroup()
    for module in modules:
        group.add(type(module).__name__, module)
    return group


def _with_params(module: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in module.named_children() if _count(m)]


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _loose(module: nn.Module) -> list[nn.Parameter]:
    return list(module.parameters(recurse=False))


def _split_head(
    network: nn.Module,
) -> tuple[list[tuple[str, nn.Module]], list[nn.Parameter], LayerGroup]:
    """(body layers, the body's loose parameters, the head group)."""
    children = _with_params(network)
    for attr in ("backbone", "encoder"):
        body = getattr(network, attr, None)
        if children and children[0][1] is body:  # the input's side: a ViT's encoder is not
            head = LayerGroup(loose=_loose(network))
            for name, child in children:
                if child is not body:
                    head.add(name, child)
            return [(f"{attr}.{n}", m) for n, m in _with_params(body)], _loose(body), head
    if not children:
        return [], [], LayerGroup(loose=_loose(network))
    index = len(children) - 1
    classifier = getattr(network, "get_classifier", None)
    if callable(classifier) and isinstance(found := classifier(), nn.Module):
        index = next(
            (i for i, (_, m) in enumerate(children) if any(s is found for s in m.modules())), index
        )
    head = LayerGroup()
    head.add(*children[index])
    return children[:index] + children[index + 1 :], _loose(network), head


def _split_body(layers: list[tuple[str, nn.Module]], loose: list[nn.Parameter]) -> list[LayerGroup]:
    """Open a layer holding nearly all parameters; then join single layers to the next block."""
    layers = list(layers)
    while layers:
        total = sum(_count(m) for _, m in layers) + sum(p.numel() for p in loose)
        i = max(range(len(layers)), key=lambda k: _count(layers[k][1]))
        name, big = layers[i]
        inner = _with_params(big)
        if len(inner) < 2 or _count(big) <= OPEN_SHARE * total:
            break
        layers[i : i + 1] = [(f"{name}.{n}", m) for n, m in inner]
        loose = loose + _loose(big)
    groups: list[LayerGroup] = []
    pending = LayerGroup(loose=list(loose))
    for name, module in layers:
        pending.add(name, module)
        if _with_params(module):  # a block, not a single layer: the group ends here
            groups.append(pending)
            pending = LayerGroup()
    if pending.modules or pending.loose:
        if groups:  # single layers after the last block (a final norm) join it
            groups[-1].names += pending.names
            groups[-1].modules += pending.modules
            groups[-1].loose += pending.loose
        else:
            groups.append(pending)
    return groups
