"""Figures of a parity report (matplotlib ``Figure`` objects, no pyplot): loss curves of both
frameworks overlaid, images side by side with their difference, activation statistics per layer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from parity_tests.metrics import curve_divergence, curve_relative_diff


def plot_loss_curves(
    layer: str,
    filters: Sequence[int],
    ref: np.ndarray,
    other: np.ndarray,
    names: tuple[str, str] = ("tensorflow", "torch"),
    again: np.ndarray | None = None,
) -> Figure:
    """One panel per filter: both loss histories, and (right axis, log) how far apart they have been
    by each step (:func:`~parity_tests.metrics.curve_divergence`); with ``again`` (the reference
    rerun from a 1-ulp-perturbed start) the same for the noise floor, dashed red."""
    n = len(filters)
    cols = min(n, 4)
    rows = -(-n // cols)
    fig = Figure(figsize=(3.6 * cols, 2.8 * rows + 0.5), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    steps = np.arange(ref.shape[1])
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.set_axis_off()
            continue
        ax.plot(steps, ref[i], lw=2.0, color="tab:orange", label=names[0])
        ax.plot(steps, other[i], lw=1.0, ls="--", color="tab:blue", label=names[1])
        twin = ax.twinx()
        twin.semilogy(steps, np.maximum(curve_divergence(ref[i], other[i]), 1e-12), lw=0.8, color="tab:gray")
        if again is not None:
            twin.semilogy(
                steps, np.maximum(curve_divergence(ref[i], again[i]), 1e-12), lw=0.8, ls="--", color="tab:red"
            )
        twin.set_ylim(1e-10, 1.0)
        twin.tick_params(labelsize=7, colors="tab:gray")
        title = f"#{filters[i]}  diff {curve_relative_diff(ref[i], other[i]):.1e}"
        if again is not None:
            title += f", floor {curve_relative_diff(ref[i], again[i]):.1e}"
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        if i == 0:
            ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(
        f"{layer}: loss histories (right, log: divergence so far, grey"
        + (", and the noise floor, red)" if again is not None else ")")
    )
    return fig


def plot_image_pairs(
    layer: str,
    filters: Sequence[int],
    ref: np.ndarray,
    other: np.ndarray,
    names: tuple[str, str] = ("tensorflow", "torch"),
) -> Figure:
    """Rows = filters; columns = reference image, other image, |difference| in grey levels."""
    n = len(filters)
    fig = Figure(figsize=(7.5, 2.4 * n + 0.5), layout="constrained")
    axes = fig.subplots(n, 3, squeeze=False)
    for i in range(n):
        diff = np.abs(ref[i].astype(np.int16) - other[i].astype(np.int16)).max(axis=-1)
        for col, (img, title) in enumerate(((ref[i], names[0]), (other[i], names[1]))):
            axes[i, col].imshow(img)
            axes[i, col].set_title(f"#{filters[i]} {title}", fontsize=8)
        im = axes[i, 2].imshow(diff, cmap="magma", vmin=0, vmax=max(1, int(diff.max())))
        axes[i, 2].set_title(f"|diff| max {int(diff.max())}, >1: {np.mean(diff > 1):.1%}", fontsize=8)
        fig.colorbar(im, ax=axes[i, 2], shrink=0.8)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle(f"{layer}: final images (deprocessed) and their difference")
    return fig


def plot_activation_stats(
    stats: Mapping[str, Mapping[str, float]], bound: float, title: str = "Activations on the sample photo, per layer"
) -> Figure:
    """Per layer: mean and max |activation| of both frameworks, and the relative max difference vs its bound.

    ``stats``: layer -> {"ref_mean", "other_mean", "ref_max", "other_max", "rel_max_diff"}.
    """
    layers = list(stats)
    x = np.arange(len(layers))
    fig = Figure(figsize=(max(6.0, 0.7 * len(layers) + 2), 6.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    for key, label, style in (
        ("ref_mean", "mean |a| tf", "o-"),
        ("other_mean", "mean |a| torch", "x--"),
        ("ref_max", "max tf", "s-"),
        ("other_max", "max torch", "+--"),
    ):
        top.semilogy(x, [max(stats[n][key], 1e-12) for n in layers], style, label=label, ms=5)
    top.set_ylabel("activation")
    top.legend(fontsize=7, ncol=2)
    bottom.semilogy(x, [max(stats[n]["rel_max_diff"], 1e-12) for n in layers], "o-", label="max|diff| / max|act|")
    bottom.axhline(bound, color="tab:red", ls=":", label=f"bound {bound:g}")
    bottom.set_ylabel("relative difference")
    bottom.legend(fontsize=7)
    bottom.set_xticks(x, layers, rotation=60, ha="right", fontsize=7)
    fig.suptitle(title)
    return fig
