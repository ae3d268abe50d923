"""One chunk of work, rendered and written: the pictures of some filters, or their dataset examples.

Each function writes its files (atomically, through :mod:`filtviz_core.site.files`) and returns the
manifest entries of its filters; the caller records them as the chunk's part only after every file
is on disk. A chunk depends on nothing but its own filters, so any process can render any chunk.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from filtviz_core import algorithm as alg
from filtviz_core.site.chunks import Chunk
from filtviz_core.site.files import examples_entry, picture_entry
from torch_filtviz.atlas.examples import PhotoSet
from torch_filtviz.atlas.methods import Method


@dataclass
class Worker:
    """Who renders: recorded in every entry (``rank``, ``host``) so a merged atlas says where each filter came from."""

    rank: int = 0
    host: str = field(default_factory=socket.gethostname)
    run: str = ""


def render_pictures(out: Path, chunk: Chunk, method: Method, model, params: Mapping[str, Any],
                    worker: Worker) -> dict[int, dict]:
    """Render ``chunk`` with ``method`` and write its files; return each filter's entry. A filter's
    ``seconds`` is its share of the chunk's time (the chunk's filters run together)."""
    result = method.render(model, chunk.layer, list(chunk.filters), params)
    steps = int(result.params.get("steps", np.shape(result.losses)[1] - 1))
    shown = {step: alg.deprocess(np.asarray(raw)) for step, raw in result.snapshots.items()}
    share = float(result.seconds) / max(1, len(chunk.filters))
    who = {"chunk": chunk.key, "rank": worker.rank, "host": worker.host, "device": str(result.device), "run": worker.run}
    return {int(f): picture_entry(out, layer=chunk.layer, method=method.name, index=int(f), image=result.images[i],
                                  snapshots={s: images[i] for s, images in shown.items()}, steps=steps,
                                  losses=result.losses[i], dead=bool(result.dead[i]), seconds=share,
                                  params=result.params, settings=method.settings(params), worker=who)
            for i, f in enumerate(chunk.filters)}


def write_examples(out: Path, chunk: Chunk, photos: PhotoSet, top: int, settings: Mapping[str, Any]) -> dict[int, dict]:
    """Crop the ``top`` dataset examples of each filter of ``chunk``; return each filter's entry."""
    peaks = photos.peaks[chunk.layer]
    entries = {}
    for f in chunk.filters:
        crops = []
        for p, value, (top_, left, bottom, right) in photos.top(chunk.layer, int(f), top):
            position = (int(peaks.rows[p, int(f)]), int(peaks.cols[p, int(f)]))
            crops.append((photos.photos[p].name, value, (top_, left, bottom, right), position,
                          photos.pixels[p][top_:bottom, left:right]))
        entries[int(f)] = examples_entry(out, layer=chunk.layer, index=int(f), crops=crops, settings=settings)
    return entries
