"""Dataset examples of a few photos already in memory: the crops of natural photos that activate each filter most.

One gradient-free forward pass per photo captures every requested layer at once (hooks, stopped
after the deepest), and keeps, for every channel, its strongest value on that photo and where it
is — never one pass per filter. A filter's examples are its ``top`` photos by that value; each
crop is the receptive field (:mod:`torch_filtviz.atlas.receptive`) of the maximising position.
The activation is the tensor the pictures maximise (the pre-activation by default).

The atlas itself streams its photos, any number of them, in batches, keeping a top-k and a
bottom-k per unit (:mod:`torch_filtviz.atlas.dataset`); :func:`photo_key` identifies a photo there.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from filtviz_core.photos import Photo
from torch_filtviz.atlas.receptive import Geometry, probe_layers
from torch_filtviz.hooks import capture, channels_first, resolve_target


@dataclass
class LayerPeaks:
    """Per photo and channel: the strongest value of the channel's map and its (row, col)."""

    values: np.ndarray  # (P, C) float32
    rows: np.ndarray  # (P, C) int32
    cols: np.ndarray  # (P, C) int32
    geometry: Geometry


@dataclass
class PhotoSet:
    """The photos as the network saw them (resized, RGB uint8) and the peaks of every layer."""

    photos: list[Photo]
    pixels: list[np.ndarray]  # (H, W, 3) uint8 each
    peaks: dict[str, LayerPeaks]
    passes: int  # forward passes run (one per photo)

    def top(self, layer: str, channel: int, k: int) -> list[tuple[int, float, tuple[int, int, int, int]]]:
        """The ``k`` photos where ``channel`` is strongest: (photo index, value, crop box), best first."""
        peaks = self.peaks[layer]
        values = peaks.values[:, channel]
        order = sorted(range(len(values)), key=lambda p: (-float(values[p]), p))[:k]
        found = []
        for p in order:
            height, width = self.pixels[p].shape[:2]
            box = peaks.geometry.box(int(peaks.rows[p, channel]), int(peaks.cols[p, channel]), height, width)
            found.append((p, float(values[p]), box))
        return found


def photo_key(photo: Photo) -> str:
    """First 16 hex digits of the photo file's SHA-256: what makes two runs' examples the same."""
    digest = hashlib.sha256()
    with open(photo.path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def photo_peaks(
    model: nn.Module,
    layers: Sequence[str],
    photos: Sequence[Photo],
    pixels: Sequence[np.ndarray],
    objective: str | None = "pre_relu",
) -> PhotoSet:
    """Run each photo once through ``model``, capturing all ``layers``; keep each channel's peak."""
    targets = [resolve_target(model, layer, objective) for layer in layers]
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    height, width = pixels[0].shape[:2]
    geometry = {layer: found[0] for layer, found in probe_layers(model, list(layers), height, width, objective).items()}
    values: dict[str, list[np.ndarray]] = {layer: [] for layer in layers}
    rows: dict[str, list[np.ndarray]] = {layer: [] for layer in layers}
    cols: dict[str, list[np.ndarray]] = {layer: [] for layer in layers}
    passes = 0
    model.eval()
    with torch.no_grad(), capture(model, targets, stop=True) as cap:
        for image in pixels:
            x = torch.from_numpy(np.ascontiguousarray(image)).to(device).permute(2, 0, 1)[None].float()
            acts = cap(x)
            passes += 1
            for layer, target in zip(layers, targets):
                act = channels_first(target, acts[layer])[0].float()  # (C, h, w), also for channels-last maps
                if act.ndim == 1:
                    act = act[:, None, None]
                flat = act.flatten(1)
                best, where = flat.max(dim=1)
                map_width = act.shape[-1]
                values[layer].append(best.cpu().numpy().astype(np.float32))
                rows[layer].append((where // map_width).cpu().numpy().astype(np.int32))
                cols[layer].append((where % map_width).cpu().numpy().astype(np.int32))
    peaks = {
        layer: LayerPeaks(np.stack(values[layer]), np.stack(rows[layer]), np.stack(cols[layer]), geometry[layer])
        for layer in layers
    }
    return PhotoSet(list(photos), [np.asarray(p) for p in pixels], peaks, passes)
