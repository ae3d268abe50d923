"""One chunk of work, rendered and written: the pictures of some filters, or their dataset examples.

Each function writes its files (atomically) and returns the manifest entries of its filters; the
caller records them as the chunk's part only after every file is on disk. A chunk depends on
nothing but its own filters, so any process can render any chunk.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from filtviz_core import algorithm as alg
from filtviz_core import atomic
from filtviz_core.site.chunks import Chunk, safe_name
from filtviz_core.site.manifest import short_float
from torch_filtviz.atlas.examples import PhotoSet
from torch_filtviz.atlas.methods import Method

THUMB_MAX = 96  # px, the grid's thumbnails (JPEG)
CROP_MAX = 128  # px, dataset example crops
JPEG_QUALITY = 88


@dataclass
class Worker:
    """Who renders: recorded in every entry (``rank``, ``host``) so a merged atlas says where each filter came from."""

    rank: int = 0
    host: str = field(default_factory=socket.gethostname)
    run: str = ""


def _jpeg(path: Path, image: np.ndarray, max_side: int | None = None) -> None:
    from PIL import Image

    img = Image.fromarray(np.asarray(image, dtype=np.uint8))
    if max_side and max(img.size) > max_side:
        scale = max_side / max(img.size)
        img = img.resize((max(1, round(img.size[0] * scale)), max(1, round(img.size[1] * scale))), Image.LANCZOS)
    with atomic.atomic_path(path) as tmp:
        img.save(tmp, format="JPEG", quality=JPEG_QUALITY)


def _sizes(out: Path, files: list[str]) -> dict[str, int]:
    return {rel: (out / rel).stat().st_size for rel in files}


def render_pictures(out: Path, chunk: Chunk, method: Method, model, params: Mapping[str, Any],
                    worker: Worker) -> dict[int, dict]:
    """Render ``chunk`` with ``method``; write ``<f>.png`` (full size), ``<f>.jpg`` (thumbnail) and one
    JPEG per snapshot step under ``pictures/<layer>/<method>/``; return each filter's entry."""
    result = method.render(model, chunk.layer, list(chunk.filters), params)
    folder = f"pictures/{safe_name(chunk.layer)}/{method.name}"
    steps = int(result.params.get("steps", len(result.losses[0]) - 1))
    shown = {step: alg.deprocess(np.asarray(raw)) for step, raw in result.snapshots.items()}
    entries: dict[int, dict] = {}
    share = float(result.seconds) / max(1, len(chunk.filters))
    for i, f in enumerate(chunk.filters):
        base = f"{folder}/{int(f):04d}"
        picture, thumb = f"{base}.png", f"{base}.jpg"
        atomic.save_png(out / picture, np.asarray(result.images[i]))
        _jpeg(out / thumb, result.images[i], THUMB_MAX)
        snapshots = {}
        for step, images in sorted(shown.items()):
            if step == steps:
                snapshots[str(step)] = picture  # the last step is the picture itself
            else:
                snapshots[str(step)] = f"{base}_step{step:04d}.jpg"
                _jpeg(out / snapshots[str(step)], images[i])
        losses = [short_float(v) for v in np.asarray(result.losses[i], dtype=np.float64)]
        files = [picture, thumb, *sorted(set(snapshots.values()) - {picture})]
        entries[int(f)] = {
            "settings": method.settings(params),
            "params": {k: v for k, v in result.params.items()},
            "files": {"picture": picture, "thumb": thumb, "snapshots": snapshots},
            "bytes": _sizes(out, files),
            "losses": losses,
            "final_loss": losses[-1],
            "gain": None if losses[-1] is None or losses[0] is None else short_float(losses[-1] - losses[0]),
            "dead": bool(result.dead[i]),
            "seconds": round(share, 4),
            "chunk": chunk.key,
            "rank": worker.rank,
            "host": worker.host,
            "device": str(result.device),
            "run": worker.run,
        }
    return entries


def write_examples(out: Path, chunk: Chunk, photos: PhotoSet, top: int, settings: Mapping[str, Any]) -> dict[int, dict]:
    """Crop the ``top`` dataset examples of each filter of ``chunk``; write them under
    ``examples/<layer>/`` (JPEG, or PNG for crops under 32 px whose colours JPEG would smear)."""
    folder = f"examples/{safe_name(chunk.layer)}"
    entries: dict[int, dict] = {}
    for f in chunk.filters:
        found, files = [], []
        for rank, (p, value, box) in enumerate(photos.top(chunk.layer, int(f), top)):
            top_, left, bottom, right = box
            crop = photos.pixels[p][top_:bottom, left:right]
            small = min(crop.shape[:2]) < 32
            rel = f"{folder}/{int(f):04d}_{rank}.{'png' if small else 'jpg'}"
            if small:
                atomic.save_png(out / rel, np.ascontiguousarray(crop))
            else:
                _jpeg(out / rel, crop, CROP_MAX)
            files.append(rel)
            peaks = photos.peaks[chunk.layer]
            found.append({"photo": photos.photos[p].name, "value": short_float(value), "box": [top_, left, bottom, right],
                          "position": [int(peaks.rows[p, int(f)]), int(peaks.cols[p, int(f)])], "file": rel})
        entries[int(f)] = {"settings": dict(settings), "bytes": _sizes(out, files), "examples": found}
    return entries
