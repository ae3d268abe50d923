"""``build_atlas``: every filter of a network as an offline website, resumable chunk by chunk.

The steps, each reusable on its own by a distributed driver (one process per rank):

1. :func:`prepare` — open the folder (refusing one that holds something else), check every layer
   and size before any long work, describe the run;
2. :func:`plan` — the fixed-size chunks still to do (pictures per method, and dataset examples),
   skipping every filter the manifest holds with the same settings and whose files are on disk;
3. :func:`run_chunks` — render chunks and record each one's part right after its files;
4. :func:`publish` — merge the parts into ``atlas.json`` and write the site.

Run in one process, :func:`build_atlas` publishes after every chunk, so an interrupted run
(Ctrl-C, a crash) loses at most the chunk in flight and leaves a site that shows what is done.
"""

from __future__ import annotations

import datetime as _dt
import functools
import os
import platform
import secrets
import shlex
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from filtviz_core import algorithm as alg
from filtviz_core import atomic
from filtviz_core.errors import FiltvizError
from filtviz_core.photos import Photo, default_photos, photo_set_key
from filtviz_core.site.chunks import Chunk, plan_chunks
from filtviz_core.site.manifest import EXAMPLES, UPSTREAM, AtlasFolder, plain
from filtviz_core.site.writer import write_site
from torch_filtviz.atlas.dataset import ExampleSet, stream_examples
from torch_filtviz.atlas.examples import photo_key
from torch_filtviz.atlas.methods import Method, ascent_params, get_method
from torch_filtviz.atlas.receptive import probe_layers
from torch_filtviz.atlas.render import (
    Worker,
    render_chunk,
    render_view_chunk,
    view_settings,
    write_examples,
    write_pictures,
    write_view,
)
from torch_filtviz.atlas.views import VIEWS, check_diversity, view_kind
from torch_filtviz.targets import layer_names

# Filters per chunk, and so images per batch (a short chunk is padded): 4 on a CPU, where batching buys little in
# fp32 (measured in docs/benchmarks.md) and a small atlas (--per-layer 4) then pays no padding;
# 128 elsewhere: GPUs need large batches.
DEFAULT_CHUNK = {"cpu": 4}
DEFAULT_CHUNK_ACCELERATOR = 128
DEFAULT_EXAMPLES = 6
DEFAULT_PHOTO_SIZE = 224


@dataclass
class AtlasPlan:
    """Everything a process needs to render its chunks and publish the site."""

    folder: AtlasFolder
    model: nn.Module
    method: Method
    params: dict[str, Any]
    wanted: list[tuple[str, list[int]]]
    chunk_size: int
    run: dict[str, Any]
    worker: Worker
    photos: list[Photo] = field(default_factory=list)
    examples: int = DEFAULT_EXAMPLES
    photo_size: int = DEFAULT_PHOTO_SIZE
    force: bool = False
    picture_chunks: list[Chunk] = field(default_factory=list)
    example_chunks: list[Chunk] = field(default_factory=list)
    photo_set: ExampleSet | None = None  # the dataset pass's top/bottom examples, once run
    workers: int | None = None  # DataLoader worker processes of the dataset pass (None: its default)
    photo_batch: int | None = None  # photos per forward pass of the dataset pass (None: its default)
    photos_skipped: list[str] = field(default_factory=list)  # unreadable files left out when the folder was read
    _photos_key: tuple[tuple, str] | None = field(default=None, repr=False)

    @property
    def out(self) -> Path:
        return self.folder.out

    def examples_settings(self) -> dict[str, Any]:
        """What makes two runs' dataset examples the same: the photo set (count and a digest of names and
        contents, computed once), the size, k (top and bottom) and the objective."""
        names = tuple((p.name, str(p.path)) for p in self.photos)
        if self._photos_key is None or self._photos_key[0] != names:
            self._photos_key = (names, photo_set_key(self.photos))
        return {
            "photos": {"count": len(self.photos), "sha256_16": self._photos_key[1]},
            "photo_size": self.photo_size,
            "top": self.examples,
            "bottom": self.examples,
            "objective": self.params.get("objective"),
        }


def _now() -> str:
    """UTC to the microsecond: runs are ordered by their start, and tiny runs start within one second."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


def _versions() -> dict[str, str | None]:
    import PIL
    import torch

    import torch_filtviz

    return {
        "torch_filtviz": torch_filtviz.__version__,
        "torch": torch.__version__,
        "torchvision": _torchvision_version(),
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "python": platform.python_version(),
    }


def _torchvision_version() -> str | None:
    """Without importing torchvision when the model did not (seconds saved per process, per rank)."""
    module = sys.modules.get("torchvision")
    if module is not None:
        return module.__version__
    from importlib import metadata

    try:
        return metadata.version("torchvision")
    except metadata.PackageNotFoundError:
        return None


def _device_of(model: nn.Module, params: Mapping[str, Any]) -> tuple[str, str | None]:
    import torch

    from torch_filtviz.models import resolve_device

    dev = resolve_device(params.get("device"))
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" and torch.cuda.is_available() else None
    return str(dev), name


def _summary_text(model: nn.Module) -> str | None:
    from torch_filtviz.summary import summary

    try:
        return summary(model, (3, 224, 224), print_fn=None)
    except Exception:  # noqa: BLE001 - a model whose summary cannot be drawn still gets its atlas
        return None


def _counts(model: nn.Module, layers: Sequence[str]) -> dict[str, int | None]:
    """Filters of the layers not being rendered (for the index), from one probe pass; None if unknown."""
    if not layers:
        return {}
    for probe in (32, 64, 224):
        try:
            return {name: found[2] for name, found in probe_layers(model, list(layers), probe).items()}
        except Exception:  # noqa: BLE001 - too small for this network (ViT asserts its size): the next size
            continue
    return dict.fromkeys(layers)


def prepare(
    model: nn.Module,
    out: str | os.PathLike[str],
    *,
    layers: Sequence[str] | None = None,
    per_layer: int | None = None,
    method: str = "pixel",
    params: Mapping[str, Any] | None = None,
    photos: Sequence[Photo] | None = None,
    examples: int = DEFAULT_EXAMPLES,
    photo_size: int = DEFAULT_PHOTO_SIZE,
    chunk_size: int | None = None,
    force: bool = False,
    command: str = "",
    worker: Worker | None = None,
    ranks: int = 1,
    workers: int | None = None,
    photo_batch: int | None = None,
    diversity: int = 0,
    negative: bool = False,
) -> AtlasPlan:
    """Open ``out`` and check everything that can go wrong before the long work starts.
    ``ranks``: the processes that will share the chunks (more than the filters asked for is refused).
    ``diversity``: K diverse pictures per unit (0: none); ``negative``: the picture that minimizes it too."""
    chosen = get_method(method)
    diversity = check_diversity(diversity)
    params = ascent_params(chosen.name, params or {})
    if per_layer is not None and per_layer < 1:
        raise FiltvizError(f"--per-layer must be at least 1 (or all), got {per_layer}")
    if workers is not None and (int(workers) != workers or workers < 0):
        raise FiltvizError(f"--workers must be a whole number >= 0, got {workers}")
    if examples < 0:
        raise FiltvizError(f"--examples must be 0 or more, got {examples}")
    if photo_size < 32:
        raise FiltvizError(f"--photo-size must be at least 32 px, got {photo_size}")
    size = int(params.get("size", 128))
    # the ascent's own checks, before any long work (ascent_params has checked steps and lr)
    if chosen.name in ("pixel", "fourier"):
        alg.check_objective(params.get("objective", alg.DEFAULT_OBJECTIVE))
        alg.check_seed(params.get("seed", alg.DEFAULT_SEED))
        alg.snapshot_steps(params.get("snapshots", alg.DEFAULT_SNAPSHOTS), int(params["steps"]))
    weights = dict(getattr(model, "weights_info", {}) or {})
    identity = {
        "name": getattr(model, "name", type(model).__name__),
        "weights": {"source": weights.get("source"), "sha256": weights.get("sha256")},
    }
    all_conv = layer_names(model, "conv")
    layers = list(layers) if layers else list(all_conv)
    if not layers:
        raise FiltvizError("the model has no conv layer to show; name layers with --layers")
    probed = probe_layers(model, layers, size, size, params.get("objective"))  # every size check, one pass
    others = [name for name in all_conv if name not in probed]
    counts: dict[str, int | None] = {name: probed[name][2] for name in layers}
    counts.update(_counts(model, others))
    described, wanted = [], []
    for name in dict.fromkeys([*all_conv, *layers]):  # the model's conv layers, then any other asked for
        entry: dict[str, Any] = {"name": name, "filters": counts.get(name)}
        if name in probed:
            entry["geometry"] = probed[name][0].as_dict()
            count = probed[name][2]
            wanted.append((name, list(range(count if per_layer is None else min(per_layer, count)))))
        described.append(entry)
    total = sum(len(filters) for _, filters in wanted)
    if ranks > total:
        raise FiltvizError(
            f"{ranks} ranks for {total} filter{'s' * (total != 1)}: start at most {total} "
            f"process{'es' * (total != 1)} (torchrun --nproc_per_node, --nnodes), or ask for more "
            "filters (--per-layer, --layers)"
        )
    folder = AtlasFolder.open(out, identity, force=force)  # the folder exists only once the input is valid
    device, device_name = _device_of(model, params)
    if chunk_size is None:
        chunk_size = DEFAULT_CHUNK.get(device.split(":")[0], DEFAULT_CHUNK_ACCELERATOR)
    if int(chunk_size) != chunk_size or chunk_size < 1:
        raise FiltvizError(f"--chunk-size must be a whole number >= 1, got {chunk_size}")
    skipped = list(getattr(photos, "skipped", []))  # a folder's unreadable files (filtviz_core.photos.PhotoList)
    photos = list(photos) if photos is not None else (default_photos() if examples else [])
    worker = worker or Worker()
    started = _now()
    # the time stamp orders runs; the random tail keeps two runs started in the same second (by the same
    # process, e.g. from a notebook) from overwriting each other's record
    run_id = f"{started[:19].replace(':', '').replace('-', '')}Z-{os.getpid()}-{secrets.token_hex(3)}"
    worker.run = run_id
    run = {
        "id": run_id,
        "command": command,
        "started": started,
        "finished": None,
        "status": "running",
        "versions": _versions(),
        "host": worker.host,
        "device": device,
        "device_name": device_name,
        "model": {**identity, "summary": _summary_text(model), "layers": described},
        "method": chosen.name,
        "params": {k: v for k, v in params.items() if k != "progress"},
        "layers": [name for name, _ in wanted],
        "per_layer": per_layer,
        "chunk_size": int(chunk_size),
        "examples": examples,
        "photo_size": photo_size,
        "rendered": 0,
        "examples_written": 0,
        "views": {"diversity": diversity, "negative": bool(negative)},
        "views_rendered": 0,
    }
    job = AtlasPlan(
        folder, model, chosen, params, wanted, int(chunk_size), run, worker, photos, examples, photo_size, force
    )
    job.workers, job.photo_batch, job.photos_skipped = workers, photo_batch, skipped
    return job


def plan(job: AtlasPlan) -> AtlasPlan:
    """Fill ``job.picture_chunks`` and ``job.example_chunks`` with what is not done yet."""
    manifest = job.folder.manifest()
    settings = job.method.settings(job.params)
    job.picture_chunks = plan_chunks(
        job.wanted,
        job.method.name,
        job.chunk_size,
        lambda layer, f: not job.force and job.folder.is_done(manifest, layer, job.method.name, f, settings),
    )
    views = job.run.get("views") or {}
    extra: list[Chunk] = []
    for view in VIEWS:
        k = int(views.get("diversity") or 0)
        if (view == "diversity" and k < 2) or (view == "negative" and not views.get("negative")):
            continue
        kind, wanted = view_kind(job.method.name, view), view_settings(job.method, job.params, view, k)
        done = functools.partial(_view_done, job, manifest, kind, wanted)
        extra += plan_chunks(job.wanted, kind, job.chunk_size, done)
    job.picture_chunks = with_views(job.picture_chunks, extra)
    if job.examples and job.photos:
        ex_settings = job.examples_settings()
        job.example_chunks = plan_chunks(
            job.wanted,
            EXAMPLES,
            job.chunk_size,
            lambda layer, f: not job.force and job.folder.is_done(manifest, layer, EXAMPLES, f, ex_settings),
        )
    else:
        job.example_chunks = []
    return job


def _photo_records(job: AtlasPlan) -> list[dict]:
    """Thumbnails and credits of the photos that appear in the requested filters' examples (not every
    photo scanned: a folder may hold thousands)."""
    from PIL import Image

    assert job.photo_set is not None
    records = []
    for index in job.photo_set.used(job.wanted):
        photo, pixels = job.photos[index], job.photo_set.pixels(index)
        thumb = f"photos/{photo.name}.jpg"
        img = Image.fromarray(pixels)
        img.thumbnail((160, 160))
        with atomic.atomic_path(job.out / thumb) as tmp:
            img.save(tmp, format="JPEG", quality=85)
        records.append(
            {
                "name": photo.name,
                "credit": photo.credit,
                "size": list(pixels.shape[:2]),
                "thumb": thumb,
                "sha256_16": photo_key(photo),
                "source": str(photo.path),
            }
        )
    return records


#: The dataset pass's checkpoint, beside the parts (removed with the atlas; --force starts the pass over).
PASS_CHECKPOINT = "parts/examples-pass.npz"


def load_photo_set(job: AtlasPlan, records: bool = True, progress: bool = False) -> ExampleSet:
    """Stream every photo once through the network (batches, all requested layers captured at once)
    and keep each filter's top and bottom examples (:func:`torch_filtviz.atlas.dataset.stream_examples`),
    resuming from the folder's checkpoint unless ``job.force``. ``records``: also write the used
    photos' thumbnails and list them in the run, with the pass's counts (the process that publishes
    does; other ranks only crop)."""
    layers = [name for name, _ in job.wanted]
    found = stream_examples(
        job.model,
        layers,
        job.photos,
        job.examples,
        short_side=job.photo_size,
        objective=job.params.get("objective"),
        batch_size=job.photo_batch,
        workers=job.workers,
        checkpoint=job.out / PASS_CHECKPOINT,
        resume=not job.force,
        settings={**job.examples_settings(), "layers": layers},
        progress=progress,
    )
    job.photo_set = found
    if records:
        skipped = [*job.photos_skipped, *(job.photos[i].name for i in found.skipped)]
        job.run["photos"] = _photo_records(job)
        job.run["examples_pass"] = {
            "photos": len(job.photos) + len(job.photos_skipped),
            "skipped": len(skipped),
            "skipped_files": skipped[:20],
            "images": found.images,
            "resumed": found.resumed,
            "forward_passes": found.passes,
            "seconds": round(found.seconds, 3),
            "images_per_s": None if found.images_per_s is None else round(found.images_per_s, 2),
        }
    return found


def default_writers(device: str, processes: int = 1) -> int:
    """Threads that write finished chunks' files while the next chunk renders: none on a CPU (the
    cores render), and on a GPU up to 8 of this machine's cores shared by its ``processes``: a GPU
    renders a chunk faster than one thread encodes its PNGs and JPEGs."""
    if device.split(":")[0] == "cpu":
        return 0
    return max(1, min(8, (os.cpu_count() or 2) // max(1, processes) - 1))


def _view_done(job: AtlasPlan, manifest: dict, kind: str, settings: dict, layer: str, f: int) -> bool:
    return not job.force and job.folder.is_done(manifest, layer, kind, f, settings)


def with_views(pictures: Sequence[Chunk], views: Sequence[Chunk]) -> list[Chunk]:
    """Each picture chunk followed by the view chunks (diversity, negative) of the same block of filters,
    then the views whose pictures are done already."""
    left = list(views)
    ordered: list[Chunk] = []
    for chunk in pictures:
        ordered.append(chunk)
        mine = [v for v in left if v.layer == chunk.layer and set(v.filters) & set(chunk.filters)]
        ordered.extend(mine)
        left = [v for v in left if v not in mine]
    return ordered + left


def run_chunks(
    job: AtlasPlan,
    chunks: Sequence[Chunk],
    *,
    after: Callable[[Chunk], object] | None = None,
    progress: Any = None,
    writers: int = 0,
) -> int:
    """Render ``chunks`` (pictures or examples) in order, recording each one's part after its files.
    ``after(chunk)`` runs after each part is written (the single-process driver publishes there).

    ``writers`` > 0: that many threads write the files (and then the part) of rendered chunks
    while the next chunk renders; every chunk rendered is recorded before this returns or raises.
    """
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(writers, thread_name_prefix="atlas-writer") if writers > 0 else None
    pending: deque = deque()
    done = 0

    def record(chunk: Chunk, write: Callable[[], dict[int, dict]]) -> None:
        job.folder.write_part(chunk, write(), job.run["id"])

    def finish(chunk: Chunk) -> None:
        nonlocal done
        if chunk.kind == EXAMPLES:
            job.run["examples_written"] += len(chunk)
        else:
            if chunk.kind == job.method.name:
                job.run["rendered"] += len(chunk)
            else:
                job.run["views_rendered"] = job.run.get("views_rendered", 0) + len(chunk)
            if progress is not None:
                progress.update(len(chunk))
        done += len(chunk)
        if after is not None:
            after(chunk)

    def examples_of(c: Chunk) -> dict[int, dict]:
        assert job.photo_set is not None  # loaded before the first examples chunk
        return write_examples(job.out, c, job.photo_set, job.examples, job.examples_settings())

    def pictures_of(c: Chunk, result: Any) -> dict[int, dict]:
        return write_pictures(job.out, c, job.method, result, job.params, job.worker)

    diversity = int((job.run.get("views") or {}).get("diversity") or 0)

    def views_of(c: Chunk, result: Any) -> dict[int, dict]:
        return write_view(job.out, c, job.method, result, job.params, job.worker, diversity)

    def settle(everything: bool) -> None:
        while pending and (everything or len(pending) > writers or pending[0][1].done()):
            chunk, future = pending.popleft()
            future.result()  # a writer's error is raised here
            finish(chunk)

    try:
        for chunk in chunks:
            if chunk.kind == EXAMPLES:
                if job.photo_set is None:
                    load_photo_set(job, records=job.worker.rank == 0)
                write = functools.partial(examples_of, chunk)
            elif chunk.kind == job.method.name:
                result = render_chunk(chunk, job.method, job.model, job.params, job.chunk_size)
                write = functools.partial(pictures_of, chunk, result)
            else:
                result = render_view_chunk(chunk, job.method, job.model, job.params, job.chunk_size, diversity)
                write = functools.partial(views_of, chunk, result)
            if pool is None:
                record(chunk, write)
                finish(chunk)
            else:
                pending.append((chunk, pool.submit(record, chunk, write)))
                settle(False)
        settle(True)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)  # the chunks rendered before a failure are still recorded
    return done


def record_upstream(job: AtlasPlan) -> None:
    """Write each requested layer's upstream connections (or why it has none) as its ``upstream`` part
    (:mod:`torch_filtviz.atlas.upstream`): read from the weights and one traced pass, in well under a second."""
    from filtviz_core.site.manifest import find_entry
    from torch_filtviz.atlas.upstream import upstream

    manifest = job.folder.manifest()
    for layer, filters in job.wanted:
        if not filters:
            continue
        try:
            found = upstream(job.model, layer, filters)
        except Exception as exc:  # noqa: BLE001 - the pictures matter more than the connections
            found = {int(f): {"upstream_note": f"not read: {type(exc).__name__}: {exc}"} for f in filters}
        if all(find_entry(manifest, layer, UPSTREAM, f) == plain(found[int(f)]) for f in filters):
            continue  # recorded already: a rerun writes nothing
        job.folder.write_part(Chunk(layer, UPSTREAM, tuple(int(f) for f in filters)), found, job.run["id"])


def publish(job: AtlasPlan, layers: Sequence[str] | None = None) -> Path:
    """Merge the manifest from every part on disk and write ``atlas.json`` and the site."""
    job.folder.write_run(job.run)
    return write_site(job.out, job.folder.manifest(), layers=layers)


def interleave(pictures: Sequence[Chunk], examples: Sequence[Chunk]) -> list[Chunk]:
    """Each picture chunk followed by the examples of the same filters, so the site fills in chunk by chunk."""
    left = list(examples)
    ordered: list[Chunk] = []
    for chunk in pictures:
        ordered.append(chunk)
        mine = [e for e in left if e.layer == chunk.layer and set(e.filters) & set(chunk.filters)]
        ordered.extend(mine)
        left = [e for e in left if e not in mine]
    return ordered + left


def command_line(argv: Sequence[str] | None = None, prog: str = "filtviz") -> str:
    """The command that made the site, as the user would type it again."""
    args = sys.argv[1:] if argv is None else list(argv)
    return shlex.join([prog, *map(str, args)])


@dataclass
class AtlasReport:
    out: Path
    index: Path
    rendered: int
    skipped: int
    examples: int
    seconds: float
    passes: int
    ranks: list[dict] = field(default_factory=list)  # torchrun: per rank its host, device, filters, seconds
    photos_skipped: int = 0  # unreadable photo files left out of the dataset pass
    images_per_s: float | None = None  # the dataset pass's rate (None: no pass ran)


def build_atlas(
    model: nn.Module,
    out: str | os.PathLike[str],
    *,
    layers: Sequence[str] | None = None,
    per_layer: int | None = None,
    method: str = "pixel",
    params: Mapping[str, Any] | None = None,
    photos: Sequence[Photo] | None = None,
    examples: int = DEFAULT_EXAMPLES,
    photo_size: int = DEFAULT_PHOTO_SIZE,
    chunk_size: int | None = None,
    force: bool = False,
    command: str = "",
    progress: bool = True,
    workers: int | None = None,
    photo_batch: int | None = None,
    diversity: int = 0,
    negative: bool = False,
) -> AtlasReport:
    """Render the filters of ``layers`` (default: every conv layer; ``per_layer`` first filters of
    each, None = all) into the static site ``out``, skipping what an earlier run already did.

    ``params``: the method's parameters (pixel: those of :func:`visualize_filters`). ``photos``:
    for the dataset examples (default: the offline set of :func:`filtviz_core.photos.default_photos`);
    ``examples``: crops per filter, top and bottom each (0: none), found by one streaming pass over the
    photos (``workers`` decoding processes, ``photo_batch`` photos per forward pass; resumable).
    ``force``: redo the requested filters (and the pass). ``diversity``: K diverse pictures of each unit
    (0: none; ``files.diversity``); ``negative``: also the picture that minimizes it (``files.negative``).
    """
    started = time.perf_counter()
    job = prepare(
        model,
        out,
        layers=layers,
        per_layer=per_layer,
        method=method,
        params=params,
        photos=photos,
        examples=examples,
        photo_size=photo_size,
        chunk_size=chunk_size,
        force=force,
        command=command,
        workers=workers,
        photo_batch=photo_batch,
        diversity=diversity,
        negative=negative,
    )
    plan(job)
    total = sum(len(f) for _, f in job.wanted)
    todo = sum(len(c) for c in job.picture_chunks)
    todo_pictures = sum(len(c) for c in job.picture_chunks if c.kind == job.method.name)
    if job.example_chunks:
        load_photo_set(job, progress=progress)
    record_upstream(job)
    publish(job)  # the site exists (showing what is done) before the first chunk
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=todo, desc="atlas", unit="filter")
    status = "failed"
    try:
        run_chunks(
            job,
            interleave(job.picture_chunks, job.example_chunks),
            progress=bar,
            after=lambda chunk: publish(job, [chunk.layer]),
            writers=default_writers(job.run["device"]),
        )
        status = "done"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        if bar is not None:
            bar.close()
        job.run["status"], job.run["finished"] = status, _now()
        index = publish(job)
    return AtlasReport(
        job.out,
        index,
        job.run["rendered"],
        total - todo_pictures,
        job.run["examples_written"],
        time.perf_counter() - started,
        job.photo_set.passes if job.photo_set else 0,
        photos_skipped=job.run.get("examples_pass", {}).get("skipped", 0),
        images_per_s=job.photo_set.images_per_s if job.photo_set else None,
    )
