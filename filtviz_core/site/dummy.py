"""A stand-in atlas with made-up pictures, written by the real site code without any network.

For timing page loads of a full 512-filter layer and for testing the pages (search, dead filters,
lazy loading) at that scale in seconds: the pictures are seeded gratings plus noise (textures that
compress like the real ones), the losses a made-up curve, and every ``dead_every``-th filter dead.
With ``views`` (the default) every unit also has what the richest atlas shows: ``diversity`` diverse
pictures, a negative, a transparency (``files.alpha``) and 8 upstream connections, so the timed page
carries all of a unit's data.
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path

import numpy as np

from filtviz_core.site.chunks import Chunk, plan_chunks
from filtviz_core.site.files import examples_entry, picture_entry, view_entry
from filtviz_core.site.manifest import EXAMPLES, UPSTREAM, AtlasFolder
from filtviz_core.site.writer import write_site


def texture(seed: int, size: int) -> np.ndarray:
    """An (size, size, 3) uint8 texture: two coloured gratings and some noise, seeded."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    image = np.zeros((size, size, 3))
    for _ in range(2):
        angle, freq = rng.uniform(0, np.pi), rng.uniform(3, 12)
        wave = np.sin(2 * np.pi * freq * (xx * np.cos(angle) + yy * np.sin(angle)) + rng.uniform(0, 6.3))
        image += wave[..., None] * rng.uniform(-1, 1, 3)
    image += rng.normal(0, 0.35, image.shape)
    image = (image - image.min()) / (np.ptp(image) + 1e-9)
    return (image * 255).astype(np.uint8)


def write_dummy_atlas(
    out: str | os.PathLike[str],
    *,
    layer: str = "block5_conv3",
    filters: int = 512,
    size: int = 128,
    steps: int = 100,
    examples: int = 4,
    dead_every: int = 7,
    chunk_size: int = 64,
    views: bool = True,
    diversity: int = 3,
) -> Path:
    """Write a one-layer atlas of ``filters`` made-up filters into ``out``; returns index.html's path."""
    identity = {"name": "dummy", "weights": {"source": "made up", "sha256": None}}
    folder = AtlasFolder.open(out, identity)
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    params = {"steps": steps, "size": size, "seed": 0}
    folder.write_run(
        {
            "id": "dummy",
            "command": "write_dummy_atlas",
            "started": now,
            "finished": now,
            "status": "done",
            "versions": {},
            "device": "none",
            "model": {**identity, "layers": [{"name": layer, "filters": filters}]},
            "method": "pixel",
            "params": params,
            "photos": [{"name": "noise", "credit": "made up"}],
        }
    )
    wanted = [(layer, range(filters))]
    for chunk in plan_chunks(wanted, "pixel", chunk_size):
        entries = {}
        for f in chunk.filters:
            image = texture(f, size)
            curve = np.log1p(np.arange(steps + 1)) * (0 if f % dead_every == 0 else 1 + f % 5)
            entries[f] = picture_entry(
                out,
                layer=layer,
                method="pixel",
                index=f,
                image=image,
                snapshots={10: texture(f + 100_000, size), steps: image},
                steps=steps,
                losses=curve,
                dead=f % dead_every == 0,
                seconds=0.0,
                params=params,
                settings=params,
                worker={"chunk": chunk.key, "rank": 0, "host": "dummy", "device": "none", "run": "dummy"},
                alpha=np.linspace(0, 1, size * size).reshape(size, size) if views else None,
            )
        folder.write_part(chunk, entries, "dummy")
        if not views:
            continue
        who = {"chunk": chunk.key, "rank": 0, "host": "dummy", "device": "none", "run": "dummy"}
        for view, count in (("diversity", diversity), ("negative", 1)):
            kind = f"pixel.{view}"
            found = {
                f: view_entry(
                    out,
                    layer=layer,
                    method="pixel",
                    view=view,
                    index=f,
                    images=[texture(f + 1000 * (k + 2), size) for k in range(count)],
                    losses=np.tile(curve, (count, 1)),
                    seconds=0.0,
                    settings=params,
                    worker=who,
                )
                for f in chunk.filters
            }
            folder.write_part(Chunk(layer, kind, chunk.filters), found, "dummy")
        links = {
            f: {
                "upstream": [
                    {"layer": layer, "filter": (f + 37 * k) % filters, "weight": 1.0 / (k + 1), "sign": 1 - 2 * (k % 2)}
                    for k in range(8)
                ]
            }
            for f in chunk.filters
        }
        folder.write_part(Chunk(layer, UPSTREAM, chunk.filters), links, "dummy")
    if examples:
        for chunk in plan_chunks(wanted, EXAMPLES, chunk_size):
            entries = {
                f: examples_entry(
                    out,
                    layer=layer,
                    index=f,
                    settings={},
                    crops=[
                        ("noise", 10.0 - k, (0, 0, 96, 96), (0, 0), texture(f * 10 + k, 96)) for k in range(examples)
                    ],
                )
                for f in chunk.filters
            }
            folder.write_part(Chunk(chunk.layer, EXAMPLES, chunk.filters), entries, "dummy")
    return write_site(out, folder.manifest())
