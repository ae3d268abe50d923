"""The files of one filter in an atlas and its manifest entry, written the same way by every renderer.

``pictures/<layer>/<method>/<NNNN>.png`` (full size), ``<NNNN>.jpg`` (the grid's thumbnail),
``<NNNN>_stepSSSS.jpg`` (snapshots; the last step is the PNG itself) and
``examples/<layer>/<NNNN>_<rank>.jpg`` (dataset example crops; PNG under 32 px, where JPEG smears
colours). Every file is written atomically; an entry lists each file with its size, so a rerun can
tell a finished filter from one whose files went missing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from filtviz_core import atomic
from filtviz_core.site.chunks import safe_name
from filtviz_core.site.manifest import short_float

THUMB_MAX = 96  # px, the grid's thumbnails
CROP_MAX = 128  # px, dataset example crops
JPEG_QUALITY = 88
SMALL_CROP = 32  # px: smaller crops are stored as PNG


def save_jpeg(path: str | Path, image: np.ndarray, max_side: int | None = None) -> None:
    """Save an (H, W, 3) uint8 image as JPEG atomically, shrunk to ``max_side`` if larger."""
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8))
    if max_side and max(img.size) > max_side:
        scale = max_side / max(img.size)
        img = img.resize(
            (max(1, round(img.size[0] * scale)), max(1, round(img.size[1] * scale))), Image.Resampling.LANCZOS
        )
    with atomic.atomic_path(path) as tmp:
        img.save(tmp, format="JPEG", quality=JPEG_QUALITY)


def sizes(out: Path, files: Sequence[str]) -> dict[str, int]:
    return {rel: (Path(out) / rel).stat().st_size for rel in files}


def picture_entry(
    out: str | os.PathLike[str],
    *,
    layer: str,
    method: str,
    index: int,
    image: np.ndarray,
    snapshots: Mapping[int, np.ndarray],
    steps: int,
    losses: Sequence[float],
    dead: bool,
    seconds: float,
    params: Mapping[str, Any],
    settings: Mapping[str, Any],
    worker: Mapping[str, Any],
    alpha: np.ndarray | None = None,
) -> dict[str, Any]:
    """Write one filter's picture, thumbnail and snapshots (uint8 images); return its manifest entry.

    ``worker``: who rendered it (``chunk``, ``rank``, ``host``, ``device``, ``run``), kept in the entry.
    ``alpha``: the maco method's transparency (H, W) in [0, 1]: written as ``<NNNN>_alpha.png`` (grey,
    as the filters command writes it; ``files.alpha``) and as the picture with that alpha channel,
    ``<NNNN>_rgba.png`` (``files.cutout``), which the page shows over a checkerboard."""
    out = Path(out)
    base = f"pictures/{safe_name(layer)}/{method}/{int(index):04d}"
    picture, thumb = f"{base}.png", f"{base}.jpg"
    atomic.save_png(out / picture, np.ascontiguousarray(image, dtype=np.uint8))
    save_jpeg(out / thumb, image, THUMB_MAX)
    shots = {}
    for step, shot in sorted(snapshots.items()):
        if int(step) == int(steps):
            shots[str(step)] = picture  # the last step is the picture itself
        else:
            shots[str(step)] = f"{base}_step{int(step):04d}.jpg"
            save_jpeg(out / shots[str(step)], shot)
    values = [short_float(v) for v in np.asarray(losses, dtype=np.float64)]
    gain = None if not values or values[-1] is None or values[0] is None else short_float(values[-1] - values[0])
    files = [picture, thumb, *sorted(set(shots.values()) - {picture})]
    named: dict[str, Any] = {"picture": picture, "thumb": thumb, "snapshots": shots}
    if alpha is not None:
        from filtviz_core.outputs import alpha_grey

        grey = alpha_grey(alpha)
        named["alpha"], named["cutout"] = f"{base}_alpha.png", f"{base}_rgba.png"
        atomic.save_png(out / named["alpha"], grey)
        rgb = np.asarray(image, dtype=np.uint8)
        if rgb.ndim == 3 and rgb.shape[-1] == 3 and rgb.shape[:2] == grey.shape:
            atomic.save_png(out / named["cutout"], np.concatenate([rgb, grey[..., None]], axis=-1))
        else:  # a grey or multispectral picture: no RGBA form
            del named["cutout"]
        files += [named[k] for k in ("alpha", "cutout") if k in named]
    return {
        "settings": dict(settings),
        "params": dict(params),
        "files": named,
        "bytes": sizes(out, files),
        "losses": values,
        "final_loss": values[-1] if values else None,
        "gain": gain,
        "dead": bool(dead),
        "seconds": round(float(seconds), 4),
        **dict(worker),
    }


def examples_entry(
    out: str | os.PathLike[str],
    *,
    layer: str,
    index: int,
    crops: Sequence[tuple[str, float, Sequence[int], Sequence[int], np.ndarray]],
    settings: Mapping[str, Any],
) -> dict[str, Any]:
    """Write one filter's dataset examples, best first: (photo name, activation, box (top, left,
    bottom, right), map position (row, col), crop pixels) each; return its manifest entry."""
    out = Path(out)
    found, files = [], []
    for rank, (photo, value, box, position, crop) in enumerate(crops):
        small = min(crop.shape[:2]) < SMALL_CROP
        rel = f"examples/{safe_name(layer)}/{int(index):04d}_{rank}.{'png' if small else 'jpg'}"
        if small:
            atomic.save_png(out / rel, np.ascontiguousarray(crop, dtype=np.uint8))
        else:
            save_jpeg(out / rel, crop, CROP_MAX)
        files.append(rel)
        found.append(
            {
                "photo": photo,
                "value": short_float(value),
                "box": [int(b) for b in box],
                "position": [int(p) for p in position],
                "file": rel,
            }
        )
    return {"settings": dict(settings), "bytes": sizes(out, files), "examples": found}


def view_entry(
    out: str | os.PathLike[str],
    *,
    layer: str,
    method: str,
    view: str,
    index: int,
    images: Sequence[np.ndarray],
    losses: np.ndarray,
    seconds: float,
    settings: Mapping[str, Any],
    worker: Mapping[str, Any],
) -> dict[str, Any]:
    """Write one filter's pictures of a view (``diversity``: its K pictures; ``negative``: the one that
    minimizes it); return the entry of its part: ``files`` ({"diversity": [paths]} or {"negative": path}),
    ``bytes``, ``settings``, the ``losses`` of each picture (the objective maximized; the negative's is
    minus the unit's value) and their ``final_losses``."""
    out = Path(out)
    base = f"pictures/{safe_name(layer)}/{method}/{int(index):04d}"
    names = [f"{base}_negative.png"] if view == "negative" else [f"{base}_div{k}.png" for k in range(len(images))]
    for name, image in zip(names, images):
        atomic.save_png(out / name, np.ascontiguousarray(image, dtype=np.uint8))
    curves = [[short_float(v) for v in np.asarray(row, dtype=np.float64)] for row in np.atleast_2d(losses)]
    files: dict[str, Any] = {"negative": names[0]} if view == "negative" else {"diversity": names}
    return {
        "settings": dict(settings),
        "files": files,
        "bytes": sizes(out, names),
        "losses": curves,
        "final_losses": [c[-1] if c else None for c in curves],
        "seconds": round(float(seconds), 4),
        **dict(worker),
    }
