"""Variable importance: which pixels a model looks at.

CNNs get attribution maps per image (captum: integrated gradients or Grad-CAM); classic models on
flattened pixels get a permutation importance map over the whole data set.
"""

from __future__ import annotations

from math import ceil

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.inspection import permutation_importance
from sklearn.metrics import f1_score

from mlcycle.reports.figures import image_grid, plt

METHODS = ("integrated_gradients", "gradcam")


def _last_conv(model: torch.nn.Module) -> torch.nn.Conv2d:
    """The last Conv2d in registration order: the deepest feature map Grad-CAM can explain."""
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    if not convs:
        raise ValueError("gradcam needs a model with a Conv2d layer; use integrated_gradients")
    return convs[-1]


def _attributions(
    model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor, method: str
) -> np.ndarray:
    """Absolute attribution summed over channels, (N, H, W) at the input resolution."""
    from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam

    if method == "integrated_gradients":
        attr = IntegratedGradients(model).attribute(
            inputs,
            baselines=torch.zeros_like(inputs),
            target=targets,
            n_steps=32,
            internal_batch_size=64,  # bounds memory: N images x 32 steps would go in one batch
        )
    elif method == "gradcam":
        cam = LayerGradCam(model, _last_conv(model)).attribute(
            inputs, target=targets, relu_attributions=True
        )
        attr = LayerAttribution.interpolate(cam, tuple(inputs.shape[-2:]), "bilinear")
    else:
        raise ValueError(f"unknown attribution method {method!r}; choose one of {METHODS}")
    return attr.detach().abs().sum(dim=1).cpu().numpy()


def _show_image(ax: Axes, image: np.ndarray) -> tuple[float, float, float, float]:
    """Draw a uint8 HxW / HxWxC image; return its extent so an overlay of another size fits it."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    gray = image.ndim == 2
    ax.imshow(image, cmap="gray" if gray else None, vmin=0, vmax=255)
    h, w = image.shape[:2]
    return (-0.5, w - 0.5, h - 0.5, -0.5)


def _unit(values: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] by the 99th percentile: one extreme pixel must not wash out the rest."""
    top = float(np.percentile(values, 99)) if values.size else 0.0
    return np.clip(values / top, 0, 1) if top > 0 else np.zeros_like(values)


def cnn_attributions(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    images: list[np.ndarray],
    class_names: list[str],
    method: str = "integrated_gradients",
) -> Figure:
    """One row per image: the image, and the same image under its attribution heat map.

    ``inputs`` are the normalized float NCHW tensors the model takes, ``targets`` the classes to
    explain (the true ones), ``images`` the uint8 originals shown (any size: the map is stretched
    over them).
    """
    was_training = model.training
    model.eval()
    try:
        # the caller may be inside no_grad/inference_mode; attributions need gradients, and
        # only a clone made outside inference mode may enter autograd
        with torch.inference_mode(False), torch.enable_grad():
            inputs = inputs.detach().clone().float()
            targets = torch.as_tensor(targets).long().to(inputs.device)
            heat = _attributions(model, inputs, targets, method)
            with torch.no_grad():
                probs = torch.softmax(model(inputs), dim=1).cpu()
    finally:
        model.train(was_training)
    pairs = min(4, len(images))  # image and heat map side by side, four pairs a row
    fig, axes = image_grid(2 * len(images), 2 * pairs, (2.0, 2.1), 0.5)
    for row, image in enumerate(images):
        line, column = divmod(row, pairs)
        ax_image, ax_heat = axes[line, 2 * column], axes[line, 2 * column + 1]
        true, pred = int(targets[row]), int(probs[row].argmax())
        _show_image(ax_image, image)
        ax_image.set_title(
            f"true {class_names[true]} / pred {class_names[pred]} ({float(probs[row, pred]):.0%})",
            fontsize=7,
        )
        extent = _show_image(ax_heat, image)
        ax_heat.imshow(_unit(heat[row]), cmap="inferno", alpha=0.55, extent=extent, vmin=0, vmax=1)
        ax_heat.set_title(f"|{method}|", fontsize=7)
    label = "integrated gradients" if method == "integrated_gradients" else "Grad-CAM"
    fig.suptitle(f"{label}: where the model looks for the true class", fontsize=9)
    # square images leave the grid's cells taller than needed: keep the title near the first row
    fig.subplots_adjust(top=1 - 0.6 / fig.get_figheight(), hspace=0.25)
    return fig


def sample_per_class(target: np.ndarray, per_class: int = 2, seed: int = 0) -> list[int]:
    """A fixed sample of ``per_class`` positions of every class (all of a smaller class),
    grouped by class, ascending within a class."""
    rng = np.random.default_rng(seed)
    target = np.asarray(target)
    positions: list[int] = []
    for c in np.unique(target):
        members = np.flatnonzero(target == c)
        picked = rng.choice(members, size=min(per_class, len(members)), replace=False)
        positions.extend(int(p) for p in np.sort(picked))
    return positions


def _patch_side(height: int, width: int, max_features: int) -> int:
    """The smallest square patch side that leaves at most ``max_features`` patches."""
    side = 1
    while ceil(height / side) * ceil(width / side) > max_features:
        side += 1
    return side


def _grouped_permutation(
    estimator,
    X: np.ndarray,
    y: np.ndarray,
    height: int,
    width: int,
    channels: int,
    side: int,
    n_repeats: int,
    seed: int,
) -> np.ndarray:
    """Drop in macro F1 when one patch (all its pixels and channels) is shuffled across rows,
    spread evenly over the patch's pixels; (H, W)."""
    rng = np.random.default_rng(seed)
    columns = np.arange(height * width * channels).reshape(height, width, channels)
    baseline = f1_score(y, estimator.predict(X), average="macro")
    work = X.copy()
    result = np.zeros((height, width))
    for y0 in range(0, height, side):
        for x0 in range(0, width, side):
            cols = columns[y0 : y0 + side, x0 : x0 + side].ravel()
            drops = []
            for _ in range(n_repeats):
                # one row permutation for the whole patch keeps its pixels together
                work[:, cols] = X[np.ix_(rng.permutation(len(X)), cols)]
                drops.append(baseline - f1_score(y, estimator.predict(work), average="macro"))
                work[:, cols] = X[:, cols]
            patch = result[y0 : y0 + side, x0 : x0 + side]
            patch[:] = np.mean(drops) / patch.size
    return result


def pixel_permutation_importance(
    estimator,
    X: np.ndarray,
    y: np.ndarray,
    image_shape: tuple[int, ...],
    n_repeats: int = 3,
    max_features: int = 1024,
    seed: int = 0,
) -> np.ndarray:
    """Permutation importance (drop in macro F1) of every pixel of a fitted estimator on
    flattened images, as an (H, W) map.

    ``X`` rows are images flattened in numpy order (H, W, C), ``image_shape`` (H, W) or (H, W, C).
    Up to ``max_features`` columns, every column is permuted alone and the map is the mean over
    channels; beyond, square patches of pixels are permuted together (the smallest side that
    leaves at most ``max_features`` patches) so the cost stays bounded.
    """
    height, width = image_shape[:2]
    channels = int(np.prod(image_shape[2:], dtype=int))
    features = height * width * channels
    if X.ndim != 2 or X.shape[1] != features:
        raise ValueError(f"X of shape {X.shape} does not hold flattened images of {image_shape}")
    if features <= max_features:
        result = permutation_importance(
            estimator, X, y, scoring="f1_macro", n_repeats=n_repeats, random_state=seed
        )
        return result.importances_mean.reshape(height, width, channels).mean(axis=-1)
    side = _patch_side(height, width, max_features)
    return _grouped_permutation(estimator, X, y, height, width, channels, side, n_repeats, seed)


def _mean_image_gray(mean_image: np.ndarray) -> np.ndarray:
    """A background in [0, 1], gray so the heat map's colours stay readable."""
    image = np.asarray(mean_image, dtype=float)
    if image.ndim == 3:
        image = image.mean(axis=-1)
    low, high = float(image.min()), float(image.max())
    return (image - low) / (high - low) if high > low else np.zeros_like(image)


def importance_map_figure(
    maps: dict[str, np.ndarray],
    mean_image: np.ndarray | None = None,
    title: str = "pixel importance (drop in macro F1 when shuffled)",
) -> Figure:
    """One heat map per model, side by side, drawn over the data set's mean image when given.
    Negative importance is chance (shuffling helped) and shows as zero."""
    n = max(len(maps), 1)
    fig, axes = plt.subplots(1, n, figsize=(3.0 * n + 0.5, 3.3), squeeze=False)
    for ax, (name, values) in zip(axes.flat, maps.items(), strict=False):
        values = np.clip(np.asarray(values, dtype=float), 0, None)
        top = float(values.max()) if values.size and values.max() > 0 else 1.0
        h, w = values.shape
        extent = (-0.5, w - 0.5, h - 0.5, -0.5)
        alpha = 1.0
        if mean_image is not None:
            background = _mean_image_gray(mean_image)
            bh, bw = background.shape
            extent = (-0.5, bw - 0.5, bh - 0.5, -0.5)
            ax.imshow(background, cmap="gray", vmin=0, vmax=1)
            alpha = 0.6
        im = ax.imshow(values, cmap="inferno", vmin=0, vmax=top, alpha=alpha, extent=extent)
        fig.colorbar(im, ax=ax, fraction=0.046)
        ax.set_title(name, fontsize=8)
        ax.axis("off")
    for ax in list(axes.flat)[len(maps) :]:
        ax.axis("off")
    if not maps:
        axes.flat[0].text(0.5, 0.5, "no importance maps", ha="center", va="center")
    fig.suptitle(title, fontsize=9)
    return fig
