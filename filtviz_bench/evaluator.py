"""One evaluator for the pictures of every method, computed from the VGG16 weights alone.

Scores the exported uint8 pictures (what a user gets), never a method's internal state:

* **robust activation**: the filter's own objective (``torch_filtviz.filter_objective``: pre-activation,
  interior mean) averaged over K held-out random transformations of the picture (shift with
  reflected borders, scaling, rotation, Gaussian blur), drawn from a distribution wider than the ones
  the methods optimize under (Lucent: jitter up to 12 px, scale 0.9-1.1, rotation up to 10 deg);
  reported as a **z-score** against the same filter's robust activation on 1/f-noise pictures (the
  picture any method could produce without trying), and as the **fraction kept**: (robust - noise) /
  (untransformed - noise), how much of what the picture earns survives being moved;
* **naturalness**: the luminance power-spectrum slope ``alpha`` and the share of power above 0.25
  cycles/pixel (:mod:`filtviz_bench.spectrum`);
* **flat** pictures (nothing to see) and the contrast (standard deviation in grey levels).

The held-out transformations of a filter's pictures are drawn from ``rng((EVAL_SEED, layer, filter))``:
every method's picture of a filter meets the same K transformations.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from filtviz_bench import spectrum
from filtviz_core import algorithm as alg
from filtviz_core import vgg16 as vgg_spec

EVAL_SEED = 20_251_126  # the held-out transformations of the pictures
NOISE_SEED = 1_729  # the 1/f-noise pictures and their transformations
CHUNK = 16  # pictures per forward pass


@dataclass(frozen=True)
class HeldOut:
    """The held-out transformation distribution, per draw: shift uniform in +-``shift`` of the size (in
    each direction, reflected borders), scale log-uniform in [1/``scale``, ``scale``], rotation uniform in
    +-``rotate`` degrees, Gaussian blur with sigma uniform in [0, ``blur``] px; ``k`` draws per picture."""

    shift: float = 0.125
    scale: float = 1.25
    rotate: float = 25.0
    blur: float = 1.0
    k: int = 16

    def draw(self, rng: np.random.Generator, size: int, k: int | None = None) -> np.ndarray:
        """(k, 5) draws: dx, dy (px), scale, angle (degrees), blur sigma (px)."""
        k = self.k if k is None else k
        shift = self.shift * size
        return np.stack(
            [
                rng.uniform(-shift, shift, k),
                rng.uniform(-shift, shift, k),
                np.exp(rng.uniform(-math.log(self.scale), math.log(self.scale), k)),
                rng.uniform(-self.rotate, self.rotate, k),
                rng.uniform(0.0, self.blur, k),
            ],
            axis=1,
        )


def transform(images: torch.Tensor, draws: np.ndarray) -> torch.Tensor:
    """Apply draw i to image i: (N, 3, H, W) float -> same shape. The content is scaled by ``scale``
    and rotated by ``angle`` about the centre, then shifted by (dx, dy) px; bilinear sampling
    (``grid_sample``, ``align_corners=False``) with reflected borders; then a Gaussian blur."""
    _n, _, h, w = images.shape
    d = torch.as_tensor(draws, dtype=torch.float64)
    dx, dy, scale, angle, _sigma = d.unbind(1)
    rad = torch.deg2rad(angle)
    cos, sin = torch.cos(rad) / scale, torch.sin(rad) / scale
    # Output pixel -> input pixel, in normalised coordinates: undo the shift, then the rotation and zoom.
    tx, ty = -2.0 * dx / w, -2.0 * dy / h
    theta = torch.stack(
        [
            torch.stack([cos, sin * h / w, cos * tx + sin * ty * h / w], 1),
            torch.stack([-sin * w / h, cos, -sin * tx * w / h + cos * ty], 1),
        ],
        1,
    )
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    moved = F.grid_sample(
        images, grid.to(images.device), mode="bilinear", padding_mode="reflection", align_corners=False
    )
    return gaussian_blur(moved, draws[:, 4])


def gaussian_blur(images: torch.Tensor, sigmas: np.ndarray) -> torch.Tensor:
    """Separable Gaussian blur of image i with ``sigmas[i]`` px (0: unchanged), reflected borders."""
    n, c, h, w = images.shape
    top = float(np.max(sigmas)) if len(sigmas) else 0.0
    if top <= 0:
        return images
    radius = max(1, math.ceil(3 * top))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernels = []
    for s in sigmas:
        k = (offsets == 0).double() if s <= 0 else torch.exp(-0.5 * (offsets / float(s)) ** 2)
        kernels.append(k / k.sum())
    k = torch.stack(kernels).to(images).repeat_interleave(c, 0)  # (n * c, taps)
    x = F.pad(images.reshape(1, n * c, h, w), [radius, radius, radius, radius], mode="reflect")
    x = F.conv2d(x, k.view(n * c, 1, 1, -1), groups=n * c)
    x = F.conv2d(x, k.view(n * c, 1, -1, 1), groups=n * c)
    return x.view(n, c, h, w)


def as_tensor(pictures: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """(N, H, W, 3) uint8 pictures -> (N, 3, H, W) float32 pixel units (0-255), what the model takes."""
    return torch.from_numpy(np.ascontiguousarray(pictures)).permute(0, 3, 1, 2).float().to(device)


def all_channel_objectives(model: nn.Module, layer: str, images: torch.Tensor) -> torch.Tensor:
    """(N, C): the objective of every filter of ``layer`` for every image (pre-activation interior means,
    the quantity :func:`torch_filtviz.filter_objective` computes for one filter per image)."""
    from torch_filtviz.hooks import capture, channels_first, resolve_target

    target = resolve_target(model, layer, alg.DEFAULT_OBJECTIVE)
    out = []
    with torch.no_grad(), capture(model, target) as cap:
        for part in images.split(CHUNK):
            act = channels_first(target, cap(part)[target.name])
            hs, ws = alg.interior(act.shape[2], act.shape[3])
            out.append(act[:, :, hs, ws].float().mean(dim=(2, 3)))
    return torch.cat(out)


def objectives_of(model: nn.Module, layer: str, filter_index: int, images: torch.Tensor) -> np.ndarray:
    """(N,) the objective of one filter for each image, through ``torch_filtviz.filter_objective``."""
    from torch_filtviz import filter_objective

    out = []
    with torch.no_grad():
        for part in images.split(CHUNK):
            out.append(filter_objective(model, layer, [filter_index] * len(part), part).double().cpu().numpy())
    return np.concatenate(out)


def layer_key(layer: str) -> int:
    """A number for the layer in the held-out seeds (its index among VGG16's convs, else a hash-free 0)."""
    return vgg_spec.CONV_NAMES.index(layer) if layer in vgg_spec.CONV_NAMES else 0


@dataclass
class NoiseBaseline:
    """A layer's response to ``count`` 1/f-noise pictures: per filter, mean and standard deviation of the
    untransformed (``plain_*``) and held-out-robust (``robust_*``) objective."""

    layer: str
    count: int
    plain_mean: np.ndarray
    plain_std: np.ndarray
    robust_mean: np.ndarray
    robust_std: np.ndarray
    robust: np.ndarray  # (count, C) the robust activation of each noise picture


def noise_baseline(
    model: nn.Module,
    layer: str,
    size: int,
    *,
    count: int = 32,
    heldout: HeldOut = HeldOut(),
    device: torch.device | str = "cpu",
    pictures: np.ndarray | None = None,
) -> NoiseBaseline:
    """Each noise picture (``spectrum.noise_pictures``, or ``pictures``) evaluated as is and under K
    held-out transformations drawn from ``rng((NOISE_SEED, 1, i))``; one forward gives every filter."""
    pictures = spectrum.noise_pictures(count, size, NOISE_SEED) if pictures is None else pictures
    x = as_tensor(pictures, device)
    plain = all_channel_objectives(model, layer, x).double().cpu().numpy()
    robust = []
    for i in range(len(pictures)):
        draws = heldout.draw(np.random.default_rng((NOISE_SEED, 1, i)), size)
        moved = transform(x[i : i + 1].expand(len(draws), -1, -1, -1), draws)
        robust.append(all_channel_objectives(model, layer, moved).double().mean(0).cpu().numpy())
    robust_arr = np.stack(robust)
    return NoiseBaseline(
        layer,
        len(pictures),
        plain.mean(0),
        plain.std(0, ddof=1),
        robust_arr.mean(0),
        robust_arr.std(0, ddof=1),
        robust_arr,
    )


@dataclass
class Score:
    """What the evaluator says about one picture of one filter."""

    layer: str
    filter: int
    activation: float  # the objective of the picture as is
    robust: float  # mean objective over the held-out transformations
    z: float  # (robust - noise robust mean) / noise robust std
    z_plain: float  # the same for the untransformed picture
    kept: float  # (robust - noise) / (plain - noise); NaN unless the picture beats the noise (z_plain >= 2)
    alpha: float
    high_share: float
    contrast: float  # standard deviation of the picture, grey levels
    flat: bool

    def as_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


KEPT_MIN_Z = 2.0


def score(
    model: nn.Module,
    layer: str,
    filters: list[int],
    pictures: np.ndarray,
    baseline: NoiseBaseline,
    *,
    heldout: HeldOut = HeldOut(),
    device: torch.device | str = "cpu",
) -> list[Score]:
    """Score ``pictures`` (F, H, W, 3) uint8, picture i showing ``filters[i]`` of ``layer``."""
    if pictures.dtype != np.uint8 or pictures.ndim != 4 or pictures.shape[-1] != 3:
        raise ValueError(f"expected (F, H, W, 3) uint8 pictures, got {pictures.dtype} {pictures.shape}")
    if len(filters) != len(pictures):
        raise ValueError(f"{len(filters)} filters for {len(pictures)} pictures")
    size = pictures.shape[1]
    x = as_tensor(pictures, device)
    out = []
    for i, f in enumerate(filters):
        draws = heldout.draw(np.random.default_rng((EVAL_SEED, layer_key(layer), int(f))), size)
        batch = torch.cat([x[i : i + 1], transform(x[i : i + 1].expand(len(draws), -1, -1, -1), draws)])
        values = objectives_of(model, layer, int(f), batch)
        act, rob = float(values[0]), float(values[1:].mean())
        z = (rob - baseline.robust_mean[f]) / baseline.robust_std[f]
        z_plain = (act - baseline.plain_mean[f]) / baseline.plain_std[f]
        gain = act - baseline.plain_mean[f]
        kept = (rob - baseline.robust_mean[f]) / gain if z_plain >= KEPT_MIN_Z else float("nan")
        pic = pictures[i]
        out.append(
            Score(
                layer=layer,
                filter=int(f),
                activation=act,
                robust=rob,
                z=float(z),
                z_plain=float(z_plain),
                kept=float(kept),
                alpha=spectrum.spectral_slope(pic),
                high_share=spectrum.high_frequency_share(pic),
                contrast=float(pic.astype(np.float64).std()),
                flat=spectrum.is_flat(pic),
            )
        )
    return out
