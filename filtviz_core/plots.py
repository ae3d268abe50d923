"""Matplotlib figures of numpy results, shared by both frameworks.

Every function returns a ``matplotlib.figure.Figure`` built without pyplot: nothing is shown,
no global state or backend is touched, and the caller saves or displays it (a Jupyter cell
shows a returned Figure as it is).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from filtviz_core.algorithm import deprocess
from filtviz_core.images import displayable


def _grid(n: int, columns: int) -> tuple[int, int]:
    columns = max(1, min(columns, n))
    return math.ceil(n / columns), columns


def _hide_axes(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def show_picture(ax, image: np.ndarray) -> None:
    """One picture on ``ax``: RGB as it is, 1 channel in grey, other channel counts as a grey channel grid."""
    shown = displayable(image)
    if shown.ndim == 2:
        levels = {"vmin": 0, "vmax": 255} if shown.dtype == np.uint8 else {}
        ax.imshow(shown, cmap="gray", **levels)
    else:
        ax.imshow(shown)


def plot_feature_maps(maps: Mapping[str, np.ndarray], channels: int = 8, cmap: str = "viridis") -> Figure:
    """One row per layer, the first ``channels`` maps of each: (H, W, C) or (1, H, W, C) arrays (NHWC)."""
    names = list(maps)
    fig = Figure(figsize=(1.6 * channels, 1.7 * max(1, len(names))), layout="constrained")
    axes = fig.subplots(max(1, len(names)), channels, squeeze=False)
    for row, name in enumerate(names):
        fmap = np.asarray(maps[name])
        fmap = fmap[0] if fmap.ndim == 4 else fmap
        for col in range(channels):
            ax = axes[row, col]
            _hide_axes(ax)
            if col < fmap.shape[-1]:
                ax.imshow(fmap[..., col], cmap=cmap)
            if col == 0:
                ax.set_ylabel(f"{name}\n{fmap.shape[0]}x{fmap.shape[1]}x{fmap.shape[2]}", fontsize=8)
            if row == 0:
                ax.set_title(f"ch {col}", fontsize=8)
    fig.suptitle("Feature maps")
    return fig


def plot_filter_grid(
    images: np.ndarray,
    filters: Sequence[int],
    layer: str,
    losses: Sequence[float] | np.ndarray | None = None,
    columns: int = 8,
) -> Figure:
    """Filter pictures of one layer in a grid: ``images`` (F, H, W, C) uint8, titles with final losses
    (C = 3 in colour, C = 1 in grey, other C as a grid of each picture's channels)."""
    images = np.asarray(images)
    rows, cols = _grid(len(filters), columns)
    fig = Figure(figsize=(1.8 * cols, 2.0 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        _hide_axes(ax)
        if i >= len(filters):
            ax.set_axis_off()
            continue
        show_picture(ax, images[i])
        title = f"#{filters[i]}"
        if losses is not None:
            title += f"  {float(losses[i]):.3g}"
        ax.set_title(title, fontsize=8)
    fig.suptitle(f"{layer}: what each filter responds to")
    return fig


def plot_iterations(
    snapshots: Mapping[int, np.ndarray],
    losses: np.ndarray,
    filters: Sequence[int],
    layer: str,
    max_filters: int = 8,
    display: Callable[[np.ndarray], np.ndarray] = deprocess,
) -> Figure:
    """The same filters at each snapshot step side by side, with their loss curves.

    ``snapshots``: step -> (F, H, W, 3) raw pixel images; ``losses``: (F, steps + 1); ``display``: raw
    picture -> uint8 (the method's own: ``filtviz_core.methods.display``; default the pixel method's).
    """
    steps = sorted(snapshots)
    losses = np.asarray(losses)
    shown = min(len(filters), max_filters)
    fig = Figure(figsize=(2.0 * len(steps) + 3.5, 2.0 * shown + 0.4), layout="constrained")
    axes = fig.subplots(shown, len(steps) + 1, squeeze=False)
    for row in range(shown):
        for col, step in enumerate(steps):
            ax = axes[row, col]
            _hide_axes(ax)
            show_picture(ax, display(np.asarray(snapshots[step])[row]))
            ax.set_title(f"#{filters[row]} step {step}  {losses[row, step]:.3g}", fontsize=8)
        curve = axes[row, -1]
        curve.plot(np.arange(losses.shape[1]), losses[row], lw=1.2)
        curve.plot(steps, losses[row, steps], "o", ms=4)
        curve.set_xlabel("step", fontsize=8)
        curve.set_ylabel("loss", fontsize=8)
        curve.tick_params(labelsize=7)
    fig.suptitle(f"{layer}: iterations {' vs '.join(str(s) for s in steps)}")
    return fig


def plot_kernels(kernel: np.ndarray, bgr: bool = True, columns: int = 8) -> Figure:
    """First-layer kernels as small pictures: ``kernel`` HWIO (e.g. block1_conv1's 64), in colour for I = 3,
    grey for I = 1, a grid of each kernel's input channels for other I.

    Keras weights see BGR input, so their input channels are flipped to show RGB (``bgr=True``, I = 3).
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 4 or kernel.shape[2] < 1:
        raise ValueError(f"expected an HWIO kernel, got shape {kernel.shape}")
    if bgr and kernel.shape[2] == 3:
        kernel = kernel[:, :, ::-1, :]
    lo, hi = kernel.min(), kernel.max()
    pictures = (kernel - lo) / (hi - lo + 1e-12)
    n = kernel.shape[3]
    rows, cols = _grid(n, columns)
    fig = Figure(figsize=(1.2 * cols, 1.3 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        _hide_axes(ax)
        if i < n:
            if kernel.shape[2] == 3:
                ax.imshow(pictures[:, :, :, i], interpolation="nearest")
            else:
                ax.imshow(displayable(pictures[:, :, :, i]), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(str(i), fontsize=7)
        else:
            ax.set_axis_off()
    fig.suptitle(f"First-layer kernels ({n})")
    return fig
