"""One chunk of work, rendered and written: the pictures of some filters, or their dataset examples.

Each function writes its files (atomically, through :mod:`filtviz_core.site.files`) and returns the
manifest entries of its filters; the caller records them as the chunk's part only after every file
is on disk. A chunk depends on nothing but its own filters, so any process can render any chunk.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from filtviz_core import methods
from filtviz_core.site.chunks import Chunk, pad_filters
from filtviz_core.site.files import picture_entry
from torch_filtviz.atlas.dataset import ExampleSet
from torch_filtviz.atlas.methods import Method


@dataclass
class Worker:
    """Who renders: recorded in every entry (``rank``, ``host``) so a merged atlas says where each filter came from."""

    rank: int = 0
    host: str = field(default_factory=socket.gethostname)
    run: str = ""


@contextlib.contextmanager
def deterministic_kernels() -> Iterator[None]:
    """cuDNN's deterministic algorithms (no autotuning, no atomics) for the duration, then the
    caller's settings back: with a fixed batch shape, a filter's picture then depends on nothing
    but its own settings on a GPU too. CPU kernels (oneDNN) are deterministic already."""
    import torch

    saved = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved


def render_chunk(chunk: Chunk, method: Method, model, params: Mapping[str, Any], batch: int | None = None):
    """Render ``chunk`` with ``method`` (no files): the method's result, for the padded batch.

    The chunk runs as ONE batch of ``batch`` images (default: its own length): a shorter chunk
    is filled with copies of its first filter whose results are dropped, so every chunk of an
    atlas has the same shape and a filter's picture is bitwise the same whatever else shares its
    chunk."""
    filters = [int(f) for f in chunk.filters]
    size = max(len(filters), int(batch or 0))
    with deterministic_kernels():
        return method.render(model, chunk.layer, pad_filters(filters, size), {**params, "batch_size": size})


def write_pictures(
    out: Path, chunk: Chunk, method: Method, result, params: Mapping[str, Any], worker: Worker
) -> dict[int, dict]:
    """Write the files of a rendered chunk (its own filters; the padding is dropped); return each
    filter's entry. A filter's ``seconds`` is its share of the chunk's time, padding included."""
    filters = [int(f) for f in chunk.filters]
    n = len(filters)
    steps = int(result.params.get("steps", np.shape(result.losses)[1] - 1))
    display = methods.display(method.name)  # the method's own rule, as for its final picture
    shown = {step: display(np.asarray(raw)[:n]) for step, raw in result.snapshots.items()}
    share = float(result.seconds) / max(1, n)
    who = {
        "chunk": chunk.key,
        "rank": worker.rank,
        "host": worker.host,
        "device": str(result.device),
        "run": worker.run,
    }
    return {
        f: picture_entry(
            out,
            layer=chunk.layer,
            method=method.name,
            index=f,
            image=result.images[i],
            snapshots={s: images[i] for s, images in shown.items()},
            steps=steps,
            losses=result.losses[i],
            dead=bool(result.dead[i]),
            seconds=share,
            params=result.params,
            settings=method.settings(params),
            worker=who,
            alpha=None if getattr(result, "alpha", None) is None else np.asarray(result.alpha)[i],
        )
        for i, f in enumerate(filters)
    }


def view_settings(method: Method, params: Mapping[str, Any], view: str, diversity: int) -> dict[str, Any]:
    """What decides a view's pictures: the method's settings and the view (with K for diversity)."""
    extra: dict[str, Any] = {"view": view}
    if view == "diversity":
        extra["diversity"] = int(diversity)
    return {**method.settings(params), **extra}


def render_view_chunk(chunk: Chunk, method: Method, model, params: Mapping[str, Any], batch: int, diversity: int):
    """Render a view chunk (kind ``<method>.diversity`` or ``<method>.negative``), padded to ``batch``
    filters as picture chunks are, so a unit's view does not depend on its chunk either."""
    from torch_filtviz.atlas.views import render_diversity, render_negative, split_kind

    view = split_kind(chunk.kind)[1]
    filters = pad_filters([int(f) for f in chunk.filters], max(len(chunk.filters), int(batch or 0)))
    plain = {k: v for k, v in params.items() if k != "batch_size"}
    with deterministic_kernels():
        if view == "diversity":
            return render_diversity(model, chunk.layer, filters, method.name, plain, diversity)
        return render_negative(model, chunk.layer, filters, method.name, plain)


def write_view(
    out: Path, chunk: Chunk, method: Method, result, params: Mapping[str, Any], worker: Worker, diversity: int
) -> dict[int, dict]:
    """Write the files of a rendered view chunk (padding dropped); return each filter's entry."""
    from filtviz_core.site.files import view_entry
    from torch_filtviz.atlas.views import split_kind

    view = split_kind(chunk.kind)[1]
    assert view is not None
    k = int(diversity) if view == "diversity" else 1
    filters = [int(f) for f in chunk.filters]
    share = float(result.seconds) / max(1, len(filters))
    who = {
        "chunk": chunk.key,
        "rank": worker.rank,
        "host": worker.host,
        "device": str(result.device),
        "run": worker.run,
    }
    settings = view_settings(method, params, view, diversity)
    return {
        f: view_entry(
            out,
            layer=chunk.layer,
            method=method.name,
            view=view,
            index=f,
            images=[result.images[i * k + j] for j in range(k)],
            losses=np.asarray(result.losses)[i * k : (i + 1) * k],
            seconds=share,
            settings=settings,
            worker=who,
        )
        for i, f in enumerate(filters)
    }


def write_examples(out: Path, chunk: Chunk, photos: ExampleSet, k: int, settings: Mapping[str, Any]) -> dict[int, dict]:
    """Crop the ``k`` top and ``k`` bottom dataset examples of each filter of ``chunk``; return each
    filter's entry: ``{"settings", "bytes", "top": [...], "bottom": [...]}``, each example
    ``{"photo", "box": [x0, y0, x1, y1] (the resized photo's pixels, x1/y1 exclusive), "activation",
    "position": [row, col] (in the map), "file"}``, best first (``examples/<layer>/<NNNN>_top<r>.jpg``,
    ``_bottom<r>``; PNG under 32 px)."""
    from filtviz_core import atomic
    from filtviz_core.site.chunks import safe_name
    from filtviz_core.site.files import CROP_MAX, SMALL_CROP, save_jpeg, sizes
    from filtviz_core.site.manifest import short_float

    entries = {}
    for f in chunk.filters:
        entry: dict[str, Any] = {"settings": dict(settings)}
        files = []
        for which in ("top", "bottom"):
            found = []
            positions = photos.extremes[chunk.layer].found(int(f), which)
            for rank, (p, value, box) in enumerate(photos.examples(chunk.layer, int(f), which)[:k]):
                crop = photos.crop(p, box)
                small = min(crop.shape[:2]) < SMALL_CROP
                rel = f"examples/{safe_name(chunk.layer)}/{int(f):04d}_{which}{rank}.{'png' if small else 'jpg'}"
                if small:
                    atomic.save_png(out / rel, np.ascontiguousarray(crop, dtype=np.uint8))
                else:
                    save_jpeg(out / rel, crop, CROP_MAX)
                files.append(rel)
                found.append(
                    {
                        "photo": photos.photos[p].name,
                        "box": [int(b) for b in box],
                        "activation": short_float(value),
                        "position": [positions[rank][2], positions[rank][3]],
                        "file": rel,
                    }
                )
            entry[which] = found
        entry["bytes"] = sizes(out, files)
        entries[int(f)] = entry
    return entries
