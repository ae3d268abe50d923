"""Dataset examples at scale: one streaming pass over any number of photos, top-k and bottom-k per unit.

Why a stream: a folder of thousands of photos cannot sit in memory, nor can every activation of every
unit. Photos are decoded by ``DataLoader`` worker processes, grouped into batches of one shape, and each
batch runs ONE gradient-free forward pass that captures every requested layer (hooks, stopped after the
deepest). Per unit only a running top-k (the photos where its map's maximum is highest, at the maximising
position) and bottom-k (the photos where its map's minimum is lowest, at the minimising position) are
kept: memory O(units * k), whatever the number of photos.

Shapes: each photo is resized to the short side asked for (as the atlas always did) and its long side is
trimmed, centred, to the short side plus a multiple of 32 px (at most twice the short side)
(:func:`filtviz_core.photos.fit_photo`), so photos of any size fall into a few shapes; a worker batches
photos of the same shape. Boxes are given in the resized photo's own pixels (the trim's offset added).

Resumable: every ``every`` batches (and when stopped by an error or Ctrl-C) the running state and the
set of photos already folded in are written atomically to a checkpoint; a rerun with the same settings
continues from it, a rerun with other settings (or ``resume=False``) starts over. Unreadable photos are
skipped and counted.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from filtviz_core import atomic
from filtviz_core.errors import FiltvizError
from filtviz_core.photos import Photo, fit_photo, fitted_shape, load_photo
from torch_filtviz.atlas.receptive import Geometry, probe_layers
from torch_filtviz.hooks import capture, channels_first, resolve_target

#: Checkpoint format tag (a file of another format is ignored and the pass starts over).
FORMAT = "filtviz-examples-pass/1"


def default_workers() -> int:
    """DataLoader worker processes that decode photos while the network runs: one core is left to the
    main process; at most 4 (decoding a 224 px photo costs far less than its forward pass)."""
    return max(0, min(4, (os.cpu_count() or 1) - 1))


def default_batch(device: torch.device) -> int:
    """Photos per forward pass: 16 on a CPU (larger buys nothing there), 64 on an accelerator."""
    return 16 if device.type == "cpu" else 64


class PhotoStream(IterableDataset):
    """Batches of equally shaped photos: each worker decodes its share (every ``num_workers``-th photo),
    keeps one bucket per shape and yields a bucket when it holds ``batch`` photos (the rest at the end).

    Yields ``((indices (B,) int64, pixels (B, H, W, 3) uint8), skipped [index, ...])``; a photo that cannot
    be read is reported in ``skipped`` (with an empty batch if need be), never raised."""

    def __init__(self, photos: Sequence[Photo], indices: Sequence[int], short_side: int, batch: int) -> None:
        self.photos, self.indices, self.short_side, self.batch = list(photos), list(indices), short_side, batch

    def __iter__(self) -> Iterator[tuple[tuple[torch.Tensor, torch.Tensor], list[int]]]:
        info = get_worker_info()
        share = self.indices if info is None else self.indices[info.id :: info.num_workers]
        buckets: dict[tuple[int, int], list[tuple[int, np.ndarray]]] = {}
        skipped: list[int] = []
        for i in share:
            try:
                pixels, _ = fit_photo(self.photos[i], self.short_side)
            except (FiltvizError, OSError, ValueError):
                skipped.append(i)
                continue
            shape = (int(pixels.shape[0]), int(pixels.shape[1]))
            bucket = buckets.setdefault(shape, [])
            bucket.append((i, pixels))
            if len(bucket) == self.batch:
                yield _batch(bucket), skipped
                buckets.pop(shape)
                skipped = []
        for bucket in buckets.values():
            yield _batch(bucket), skipped
            skipped = []
        if skipped:
            yield (torch.zeros(0, dtype=torch.int64), torch.zeros(0, 1, 1, 3, dtype=torch.uint8)), skipped


def _batch(bucket: list[tuple[int, np.ndarray]]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.tensor([i for i, _ in bucket], dtype=torch.int64), torch.from_numpy(np.stack([p for _, p in bucket]))


def _unbatched(item):
    return item


@dataclass
class Extremes:
    """The running top-k and bottom-k of every unit of one layer (numpy, CPU): per unit (row of each
    array) the activation, the photo's index (-1: no photo yet) and the map position (row, col), best
    first. Ties go to the photo with the smaller index, so the result does not depend on batch order."""

    top_value: np.ndarray  # (C, k) float32, descending
    top_photo: np.ndarray  # (C, k) int64
    top_row: np.ndarray  # (C, k) int32
    top_col: np.ndarray  # (C, k) int32
    bottom_value: np.ndarray  # (C, k) float32, ascending
    bottom_photo: np.ndarray
    bottom_row: np.ndarray
    bottom_col: np.ndarray

    @classmethod
    def empty(cls, channels: int, k: int) -> Extremes:
        def ints(dtype=np.int32):
            return np.full((channels, k), -1, dtype=dtype)

        return cls(
            np.full((channels, k), -np.inf, np.float32), ints(np.int64), ints(), ints(),
            np.full((channels, k), np.inf, np.float32), ints(np.int64), ints(), ints(),
        )  # fmt: skip

    def arrays(self) -> dict[str, np.ndarray]:
        return dict(vars(self))

    def found(self, unit: int, which: str) -> list[tuple[int, float, int, int]]:
        """(photo index, activation, row, col) of ``unit``'s ``which`` ("top" or "bottom") photos, best first."""
        photos = getattr(self, f"{which}_photo")[unit]
        values = getattr(self, f"{which}_value")[unit]
        rows, cols = getattr(self, f"{which}_row")[unit], getattr(self, f"{which}_col")[unit]
        return [(int(p), float(v), int(r), int(c)) for p, v, r, c in zip(photos, values, rows, cols) if p >= 0]


def _merge(values, photos, rows, cols, new_values, new_photos, new_rows, new_cols, k: int, descending: bool):
    """Keep the k best of the running (C, k) and the batch's (C, B) candidates (torch, on their device)."""
    v = torch.cat([values, new_values], 1)
    p = torch.cat([photos, new_photos], 1)
    r = torch.cat([rows, new_rows], 1)
    c = torch.cat([cols, new_cols], 1)
    by_photo = torch.sort(torch.where(p < 0, torch.iinfo(torch.int64).max, p), dim=1, stable=True).indices
    v, p, r, c = (t.gather(1, by_photo) for t in (v, p, r, c))  # ties then go to the smaller photo index
    order = torch.sort(v, dim=1, descending=descending, stable=True).indices[:, :k]
    return tuple(t.gather(1, order) for t in (v, p, r, c))


class RunningExtremes:
    """Top-k and bottom-k per unit of several layers, updated batch by batch on the activations' device."""

    def __init__(self, channels: dict[str, int], k: int, device: torch.device | str = "cpu") -> None:
        self.k = k
        self.device = torch.device(device)
        self.state = {layer: self._tensors(Extremes.empty(n, k)) for layer, n in channels.items()}

    def _tensors(self, ex: Extremes) -> dict[str, torch.Tensor]:
        return {name: torch.from_numpy(np.array(a)).to(self.device) for name, a in ex.arrays().items()}

    def load(self, layer: str, ex: Extremes) -> None:
        self.state[layer] = self._tensors(ex)

    def extremes(self, layer: str) -> Extremes:
        return Extremes(**{name: t.cpu().numpy() for name, t in self.state[layer].items()})

    def update(self, layer: str, act: torch.Tensor, photos: torch.Tensor) -> None:
        """Fold in a batch: ``act`` (B, C, h, w) (or (B, C, ...): positions flattened, row 0), ``photos``
        (B,) their indices. Non-finite activations are ignored."""
        batch, units = act.shape[:2]
        width = act.shape[-1] if act.ndim == 4 else max(1, int(np.prod(act.shape[2:])))
        flat = act.reshape(batch, units, -1).float()
        hi, hi_at = flat.max(dim=2)
        lo, lo_at = flat.min(dim=2)
        if not (torch.isfinite(hi).all() and torch.isfinite(lo).all()):  # rare: mask NaN and inf, then again
            finite = torch.isfinite(flat)
            hi, hi_at = torch.where(finite, flat, -torch.inf).max(dim=2)
            lo, lo_at = torch.where(finite, flat, torch.inf).min(dim=2)
        ids = photos.to(self.device).view(1, -1).expand(units, batch)
        s = self.state[layer]
        for which, value, where, desc in (("top", hi, hi_at, True), ("bottom", lo, lo_at, False)):
            where = where.T.to(self.device)
            merged = _merge(
                s[f"{which}_value"], s[f"{which}_photo"], s[f"{which}_row"], s[f"{which}_col"],
                value.T.to(self.device), ids, (where // width).int(), (where % width).int(), self.k, desc,
            )  # fmt: skip
            for name, t in zip(("value", "photo", "row", "col"), merged):
                s[f"{which}_{name}"] = t


@dataclass
class ExampleSet:
    """What the pass found: per layer the :class:`Extremes`, and how to turn them into crops."""

    model: nn.Module
    objective: str | None
    photos: list[Photo]
    short_side: int
    extremes: dict[str, Extremes]
    skipped: list[int] = field(default_factory=list)  # photos that could not be decoded
    passes: int = 0  # forward passes (batches) run by this call
    images: int = 0  # photos run by this call
    resumed: int = 0  # photos taken from the checkpoint
    seconds: float = 0.0  # this call's pass
    _geometry: dict[tuple[int, int], dict[str, Geometry]] = field(default_factory=dict, repr=False)
    _pixels: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def images_per_s(self) -> float | None:
        return self.images / self.seconds if self.seconds > 0 and self.images else None

    def geometry(self, layer: str, rows: int, cols: int) -> Geometry:
        """Receptive field of ``layer`` for inputs of ``rows`` x ``cols`` (one probe pass per shape, cached)."""
        if (rows, cols) not in self._geometry:
            found = probe_layers(self.model, list(self.extremes), rows, cols, self.objective)
            self._geometry[(rows, cols)] = {name: g for name, (g, _, _) in found.items()}
        return self._geometry[(rows, cols)][layer]

    def pixels(self, photo: int) -> np.ndarray:
        """The resized photo ``photo`` (short side ``short_side``, not trimmed); the last 64 are cached."""
        if photo not in self._pixels:
            if len(self._pixels) >= 64:
                self._pixels.pop(next(iter(self._pixels)))
            self._pixels[photo] = load_photo(self.photos[photo], self.short_side)
        return self._pixels[photo]

    def examples(self, layer: str, unit: int, which: str = "top") -> list[tuple[int, float, tuple[int, int, int, int]]]:
        """``unit``'s ``which`` ("top" or "bottom") examples: (photo index, activation, box), best first;
        box = (x0, y0, x1, y1) in the resized photo's pixels, x1/y1 exclusive: the receptive field of the
        position, clipped to the part of the photo the network saw."""
        found = []
        for photo, value, row, col in self.extremes[layer].found(unit, which):
            height, width = self.pixels(photo).shape[:2]
            rows, cols, top, left = fitted_shape(height, width, self.short_side)
            y0, x0, y1, x1 = self.geometry(layer, rows, cols).box(row, col, rows, cols)
            found.append((photo, value, (x0 + left, y0 + top, x1 + left, y1 + top)))
        return found

    def crop(self, photo: int, box: Sequence[int]) -> np.ndarray:
        x0, y0, x1, y1 = box
        return self.pixels(photo)[y0:y1, x0:x1]

    def used(self, wanted: Sequence[tuple[str, Sequence[int]]] | None = None) -> list[int]:
        """Indices of the photos that appear in the examples of ``wanted`` (layer, units) (default: all)."""
        seen: set[int] = set()
        for layer, ex in self.extremes.items():
            units = dict(wanted).get(layer) if wanted is not None else range(len(ex.top_photo))
            if units is None:
                continue
            rows = list(units)
            for arr in (ex.top_photo[rows], ex.bottom_photo[rows]):
                seen.update(int(p) for p in np.unique(arr) if p >= 0)
        return sorted(seen)


def _save(path: Path, settings: dict, done: np.ndarray, skipped: list[int], running: RunningExtremes, finished: bool):
    arrays = {f"{layer}/{name}": a for layer in running.state for name, a in running.extremes(layer).arrays().items()}
    meta = {"format": FORMAT, "settings": settings, "skipped": skipped, "finished": finished}
    with atomic.atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), done=done, **arrays)


def _load(path: Path, settings: dict, layers: Sequence[str]) -> tuple[np.ndarray, list[int], dict, bool] | None:
    """(done mask, skipped, {layer: Extremes}, finished) from a checkpoint of the same settings, else None."""
    try:
        with np.load(path) as data:
            meta = json.loads(bytes(data["meta"]).decode())
            if meta.get("format") != FORMAT or meta.get("settings") != settings:
                return None
            names = list(vars(Extremes.empty(0, 0)))
            found = {layer: Extremes(**{n: data[f"{layer}/{n}"] for n in names}) for layer in layers}
            return data["done"].astype(bool), list(meta["skipped"]), found, bool(meta.get("finished"))
    except (OSError, ValueError, KeyError):
        return None


def stream_examples(
    model: nn.Module,
    layers: Sequence[str],
    photos: Sequence[Photo],
    k: int,
    *,
    short_side: int = 224,
    objective: str | None = "pre_relu",
    batch_size: int | None = None,
    workers: int | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    every: int = 10,
    resume: bool = True,
    settings: dict[str, Any] | None = None,
    progress: bool = True,
    after_batch: Callable[[int], object] | None = None,
) -> ExampleSet:
    """Run every photo once through ``model`` (batches of ``batch_size``, decoded by ``workers`` processes)
    and keep each unit's ``k`` top and ``k`` bottom photos of every layer in ``layers``.

    ``checkpoint``: a file for the running state (written atomically every ``every`` batches, at the end
    and when interrupted); with ``resume`` a rerun continues from it if it was written with the same
    ``settings`` (default: layers, the photos' names and paths, size, k, objective). ``after_batch(n)`` is called after
    the n-th batch of this call is folded in.

    >>> from filtviz_core.photos import default_photos
    >>> from torch_filtviz.atlas.dataset import stream_examples
    >>> found = stream_examples(model, ["block3_conv1"], default_photos(), 4, short_side=64)  # doctest: +SKIP
    >>> found.examples("block3_conv1", 0, "top")  # [(photo index, activation, (x0, y0, x1, y1)), ...]  # doctest: +SKIP
    """
    if k < 1:
        raise FiltvizError(f"--examples must be at least 1 for a pass, got {k}")
    layers, photos = list(layers), list(photos)
    targets = [resolve_target(model, layer, objective) for layer in layers]
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    batch_size = int(batch_size or default_batch(device))
    workers = default_workers() if workers is None else int(workers)
    if workers < 0:
        raise FiltvizError(f"--workers must be 0 or more, got {workers}")
    probed = probe_layers(model, layers, short_side, short_side, objective)  # size checks and unit counts
    channels = {layer: found[2] for layer, found in probed.items()}
    if not settings:  # the photos by name and path (the atlas passes a digest of their contents instead)
        names = hashlib.sha256("\n".join(f"{p.name}\t{p.path}" for p in photos).encode()).hexdigest()[:16]
        settings = {"layers": layers, "photos": [len(photos), names], "short_side": short_side, "k": k}
    settings = dict(settings)
    settings.setdefault("objective", objective)
    settings = json.loads(json.dumps(settings))
    running = RunningExtremes(channels, k, device)
    done = np.zeros(len(photos), dtype=bool)
    skipped: list[int] = []
    path = Path(checkpoint) if checkpoint is not None else None
    finished = False
    if path is not None and resume and path.is_file():
        loaded = _load(path, settings, layers)
        if loaded is not None and len(loaded[0]) == len(photos):
            done, skipped, found, finished = loaded
            for layer, ex in found.items():
                running.load(layer, ex)
    result = ExampleSet(model, objective, photos, short_side, {}, resumed=int(done.sum()))
    todo = [i for i in range(len(photos)) if not done[i]]
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(photos), initial=int(done.sum()), desc="examples", unit="img", smoothing=0.1)
    loader = DataLoader(
        PhotoStream(photos, todo, short_side, batch_size),
        batch_size=None,
        num_workers=workers,
        collate_fn=_unbatched,
        persistent_workers=False,
    )
    since_save, folding, started = 0, False, time.perf_counter()
    model.eval()
    try:
        with torch.no_grad(), capture(model, targets, stop=True) as cap:
            for (indices, pixels), lost in loader if todo else ():
                if len(indices):
                    x = pixels.to(device, non_blocking=True).permute(0, 3, 1, 2).float()
                    acts = cap(x)
                    result.passes += 1
                folding = True
                for layer, target in zip(layers, targets):
                    if len(indices):
                        running.update(layer, channels_first(target, acts[layer]), indices)
                done[indices.numpy()] = True
                done[lost] = True
                skipped.extend(lost)
                folding = False
                result.images += len(indices)
                if bar is not None:
                    bar.update(len(indices) + len(lost))
                since_save += 1
                if path is not None and since_save >= every:
                    _save(path, settings, done, skipped, running, False)
                    since_save = 0
                if after_batch is not None:
                    after_batch(result.passes)
        finished = True
    finally:
        result.seconds = time.perf_counter() - started
        if bar is not None:
            bar.close()
        if path is not None and todo and not folding and (since_save or finished):  # a finished one is kept as is
            _save(path, settings, done, skipped, running, finished)
    result.extremes = {layer: running.extremes(layer) for layer in layers}
    result.skipped = sorted(skipped)
    return result
