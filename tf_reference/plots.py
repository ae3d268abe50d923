"""The notebook's figures from tf_reference results: thin wrappers over ``filtviz_core.plots``.

Each returns a matplotlib ``Figure`` and never calls ``plt.show()``; the caller saves or shows it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from filtviz_core import plots as core_plots
from filtviz_core.errors import FiltvizError
from tf_reference.ascent import FilterResult


def plot_feature_maps(maps: Mapping[str, np.ndarray], channels: int = 8, cmap: str = "viridis") -> Figure:
    """One row per layer of ``feature_maps(...)`` output (first image of the batch), ``channels`` maps each."""
    return core_plots.plot_feature_maps(maps, channels=channels, cmap=cmap)


def _one_layer(results: Sequence[FilterResult]) -> str:
    if not results:
        raise FiltvizError("no filter results to plot")
    layers = {r.layer for r in results}
    if len(layers) != 1:
        raise FiltvizError(f"a figure shows one layer, got {sorted(layers)}")
    return results[0].layer


def plot_filter_grid(results: Sequence[FilterResult], columns: int = 8) -> Figure:
    """The pictures of many filters of one layer (as their method shows them), titled with their final losses."""
    layer = _one_layer(results)
    images = np.stack([r.image for r in results])
    return core_plots.plot_filter_grid(
        images, [r.filter_index for r in results], layer, losses=[float(r.losses[-1]) for r in results], columns=columns
    )


def plot_iterations(results: Sequence[FilterResult], max_filters: int = 8) -> Figure:
    """The same filters at each snapshot (default steps 10 vs 100) side by side, with loss curves."""
    layer = _one_layer(results)
    steps = sorted(results[0].snapshots)
    if any(sorted(r.snapshots) != steps for r in results):
        raise FiltvizError("results hold different snapshot steps; run them with the same snapshots")
    snapshots = {k: np.stack([r.snapshots[k] for r in results]) for k in steps}
    losses = np.stack([r.losses for r in results])
    from filtviz_core.methods import display

    return core_plots.plot_iterations(
        snapshots,
        losses,
        [r.filter_index for r in results],
        layer,
        max_filters=max_filters,
        display=display(results[0].method),
    )
