"""The notebook's figures from PyTorch objects: thin wrappers over ``filtviz_core.plots``.

They turn tensors (NCHW) into numpy (NHWC) and results into the core's arguments, so both
frameworks draw identical figures. Each returns a ``matplotlib.figure.Figure`` and never calls
``plt.show()``: save it (``fig.savefig``) or let a Jupyter cell display it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from filtviz_core import plots as core
from filtviz_core.errors import FiltvizError
from torch_filtviz.channels import input_channels

if TYPE_CHECKING:  # the ascent module is only needed for the type
    from torch_filtviz.ascent import FilterResults


def to_nhwc(maps: torch.Tensor | np.ndarray) -> np.ndarray:
    """numpy NHWC from a torch NCHW tensor (numpy arrays are taken as NHWC already)."""
    if isinstance(maps, torch.Tensor):
        t = maps.detach().float().cpu()
        if t.ndim == 3:
            t = t.unsqueeze(0)
        if t.ndim != 4:
            raise FiltvizError(f"feature maps must be (N, C, H, W) tensors, got shape {tuple(t.shape)}")
        return t.permute(0, 2, 3, 1).numpy()
    return np.asarray(maps)


def plot_feature_maps(maps: Mapping[str, torch.Tensor | np.ndarray], channels: int = 8) -> Figure:
    """One row per layer, its first ``channels`` maps for the first image.

    ``maps``: ``feature_maps(...)``'s dict of NCHW tensors, or numpy arrays in NHWC.
    """
    return core.plot_feature_maps({name: to_nhwc(m) for name, m in maps.items()}, channels=channels)


def plot_filter_grid(results: FilterResults, columns: int = 8) -> Figure:
    """The filter pictures of one run in a grid, titled with each filter's final loss."""
    return core.plot_filter_grid(
        results.images, results.filters, results.layer, losses=np.asarray(results.losses)[:, -1], columns=columns
    )


def plot_iterations(results: FilterResults, max_filters: int = 8) -> Figure:
    """The snapshots (e.g. steps 10 and 100) side by side with each filter's loss curve."""
    if not results.snapshots:
        raise FiltvizError("these results hold no snapshots; run visualize_filters with snapshots=(10, 100)")
    from filtviz_core.methods import display

    return core.plot_iterations(
        results.snapshots,
        results.losses,
        results.filters,
        results.layer,
        max_filters=max_filters,
        display=display(getattr(results, "method", "pixel")),
    )


def first_conv(model: nn.Module, layer: str = "block1_conv1") -> nn.Conv2d:
    """The ``Conv2d`` behind ``layer`` (alias or module path): the module itself, or for an alias
    that names the ReLU after a conv (VGG16's Keras names), the last conv before it."""
    aliases: dict[str, str] = getattr(model, "aliases", {}) or {}
    path = aliases.get(layer, layer)
    modules = list(model.named_modules())
    paths = [p for p, _ in modules]
    if path not in paths or not path:
        from torch_filtviz.models import layer_names

        raise FiltvizError(f"unknown layer {layer!r}; valid: {', '.join(layer_names(model, 'conv'))}")
    for _, module in reversed(modules[: paths.index(path) + 1]):
        if isinstance(module, nn.Conv2d):
            return module
    raise FiltvizError(f"layer {layer!r} has no convolution at or before it")


def plot_kernels(model: nn.Module, layer: str = "block1_conv1", columns: int = 8) -> Figure:
    """The kernels of a first conv layer (VGG16: block1_conv1's 64 3x3 kernels) as pictures: RGB for a
    3-channel input, grey for 1, a grid of the input channels otherwise.

    Keras weights see BGR input (caffe preprocessing), so their input channels are flipped to
    show RGB; torchvision weights see RGB and are shown as they are.
    """
    conv = first_conv(model, layer)
    channels = input_channels(model)
    if conv.in_channels != channels:
        raise FiltvizError(
            f"{layer} has {conv.in_channels} input channels; kernel pictures need a layer that sees the "
            f"model's {channels}-channel input"
        )
    kernel = conv.weight.detach().float().cpu().permute(2, 3, 1, 0).numpy()  # OIHW -> HWIO
    return core.plot_kernels(kernel, bgr=sees_bgr(model), columns=columns)


def sees_bgr(model: nn.Module) -> bool:
    """Whether the model's first layer sees BGR channels (Keras caffe preprocessing inside)."""
    from torch_filtviz.models import CaffePreprocess

    return isinstance(getattr(model, "preprocess", None), CaffePreprocess)


def plot_atlas(results: Sequence[FilterResults], max_filters: int = 8) -> Figure:
    """The index of an atlas: one row per layer, its first ``max_filters`` filter pictures."""
    if not results:
        raise FiltvizError("no results to draw")
    columns = max(1, min(max_filters, max(len(r.filters) for r in results)))
    fig = Figure(figsize=(1.3 * columns + 0.8, 1.4 * len(results) + 0.5), layout="constrained")
    axes = fig.subplots(len(results), columns, squeeze=False)
    for row, res in enumerate(results):
        for col in range(columns):
            ax = axes[row, col]
            ax.set_xticks([])
            ax.set_yticks([])
            if col >= len(res.filters):
                ax.set_axis_off()
                continue
            core.show_picture(ax, res.images[col])
            ax.set_title(f"#{res.filters[col]}", fontsize=7)
            if col == 0:
                ax.set_ylabel(res.layer, fontsize=8)
    fig.suptitle("Filter atlas: what the first filters of each layer respond to")
    return fig
