"""The output folder of a filter-visualization run, written the same way by both command lines.

``<out>/run.json``, ``<out>/<layer>_grid.png``, ``<out>/<layer>_iterations.png`` and one
``<out>/filters/filter_<i>.png`` per filter; every file is written atomically. (Before version
0.2 the per-filter pictures went to ``<out>/<layer>/``, which doubled the layer name under the
default ``--out outputs/filters/<layer>``.)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from filtviz_core import atomic, plots, runrecord
from filtviz_core.errors import FiltvizError
from filtviz_core.images import displayable

FILTER_DIR = "filters"  # per-filter pictures: <out>/filters/filter_0007.png


def check_writable(out: str | os.PathLike[str], create: bool = True) -> Path:
    """Make sure files can be written under ``out`` (before any long work).

    ``create=False`` checks without creating anything: ``out`` is an existing writable folder, or the
    nearest existing folder above it is writable, so that a command can refuse bad input later
    without leaving an empty folder behind.
    """
    path = Path(out)
    if not create:
        existing = path
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise FiltvizError(f"cannot write to output folder {path}: {existing} is not a folder")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise FiltvizError(f"cannot write to output folder {path}: {existing} is not writable")
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".filtviz-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise FiltvizError(f"cannot write to output folder {path}: {exc.strerror or exc}") from None
    return path


def picture_names(filters: Sequence[int]) -> list[str]:
    """File names of the per-filter pictures: ``filter_0007.png``; when a filter has several pictures
    (``diversity=K``: each filter repeated K times in a row), ``filter_0007_0.png`` ... ``filter_0007_3.png``."""
    repeated = len({int(f) for f in filters}) < len(filters)
    seen: dict[int, int] = {}
    names = []
    for f in filters:
        k = seen.get(int(f), 0)
        seen[int(f)] = k + 1
        names.append(f"filter_{int(f):04d}_{k}.png" if repeated else f"filter_{int(f):04d}.png")
    return names


def alpha_name(picture_name: str) -> str:
    """The transparency PNG beside a picture: ``filter_0007.png`` -> ``filter_0007_alpha.png``."""
    return picture_name[: -len(".png")] + "_alpha.png"


def alpha_grey(alpha: np.ndarray) -> np.ndarray:
    """One picture's transparency (H, W) in [0, 1] as the grey uint8 image its ``_alpha.png`` holds
    (``round(255 alpha)``): the filters command and the atlas save it alike."""
    return np.clip(np.floor(np.asarray(alpha, np.float64) * 255.0 + 0.5), 0, 255).astype(np.uint8)


def write_filter_outputs(
    out: str | os.PathLike[str],
    *,
    layer: str,
    filters: Sequence[int],
    images: np.ndarray,
    losses: np.ndarray,
    snapshots: Mapping[int, np.ndarray],
    record: dict[str, Any],
    per_filter_png: bool = True,
    method: str = "pixel",
    alpha: np.ndarray | None = None,
) -> dict[str, Path]:
    """Write the grid, the iteration comparison, per-filter PNGs and run.json; return their paths.

    ``method`` decides how the snapshots are shown (``filtviz_core.methods.display``). ``alpha``: the maco
    method's (F, H, W) transparency in [0, 1], written beside each picture as a grey
    ``filter_0007_alpha.png`` (``round(255 alpha)``)."""
    out = check_writable(out)
    written: dict[str, Path] = {}
    if per_filter_png:
        for i, name in enumerate(picture_names(filters)):
            atomic.save_png(out / FILTER_DIR / name, displayable(np.asarray(images[i])))  # C=1 grey, C>3 grid
            if alpha is not None:
                atomic.save_png(out / FILTER_DIR / alpha_name(name), alpha_grey(alpha[i]))
        written["filters"] = out / FILTER_DIR
    losses = np.asarray(losses)
    grid = plots.plot_filter_grid(images, filters, layer, losses=losses[:, -1])
    written["grid"] = out / f"{layer}_grid.png"
    atomic.save_figure(grid, written["grid"])
    if snapshots:
        from filtviz_core.methods import display

        comparison = plots.plot_iterations(snapshots, losses, filters, layer, display=display(method))
        written["iterations"] = out / f"{layer}_iterations.png"
        atomic.save_figure(comparison, written["iterations"])
    written["run"] = out / "run.json"
    runrecord.write_run(written["run"], record)
    return written
