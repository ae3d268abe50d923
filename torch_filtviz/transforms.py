"""Transforms: what the network sees of the picture at step k (SPEC.md §15.3-§15.4, §16.1).

:class:`Identity` hands the picture over as it is (the pixel method; the fourier method without
transforms); :class:`AffineViews` applies each element's own affine bilinear resampling of step k.

The per-filter, per-step matrices come from ``filtviz_core.transforms`` (numpy draws seeded by
``(seed, filter, step)``); this module only applies them, with the sampler written out exactly as
tf_reference writes it (same formula, same order of operations), so both frameworks agree to
float rounding. Each batch element has its own matrix: a filter's picture never sees another's draw.

:class:`CropViews` (the maco method, SPEC §17.3) returns ``views`` crops of each picture per step,
view-major (row ``v * n + i`` is view v of element i), with their noise, from ``filtviz_core.maco``'s draws.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from filtviz_core import maco
from filtviz_core import transforms as draws
from filtviz_core.algorithm import Key
from filtviz_core.methods import FourierOptions, MacoOptions


def source_coordinates(matrices: torch.Tensor, out_height: int, out_width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows and columns ``(n, Ho, Wo)`` float32 of the source point of each output pixel:
    ``A00 * r + A01 * c + b0`` and ``A10 * r + A11 * c + b1`` (``matrices``: ``(n, 2, 3)`` float32)."""
    r = torch.arange(out_height, dtype=torch.float32, device=matrices.device)[None, :, None]
    c = torch.arange(out_width, dtype=torch.float32, device=matrices.device)[None, None, :]
    m = matrices[:, :, :, None, None]
    rows = m[:, 0, 0] * r + m[:, 0, 1] * c + m[:, 0, 2]
    cols = m[:, 1, 0] * r + m[:, 1, 1] * c + m[:, 1, 2]
    return rows, cols


def resample(
    images: torch.Tensor, matrices: torch.Tensor, out_height: int, out_width: int, fill: float
) -> torch.Tensor:
    """Bilinear resampling of NHWC ``images`` ``(n, H, W, C)`` at ``A @ (r, c) + b``, grey ``fill`` outside.

    ``out = fill + (1 - fy)((1 - fx) v00 + fx v01) + fy((1 - fx) v10 + fx v11)`` with ``v = image - fill``
    at the four neighbours (0 outside the image): the image surrounded by an endless ``fill`` border.
    Returns ``(n, Ho, Wo, C)``; differentiable with respect to ``images``.
    """
    n, h, w, ch = images.shape
    rows, cols = source_coordinates(matrices, out_height, out_width)
    r0, c0 = torch.floor(rows), torch.floor(cols)
    fy, fx = (rows - r0).unsqueeze(-1), (cols - c0).unsqueeze(-1)
    # v = image - fill with one row/column of zeros around it; every index outside lands on that border.
    flat = F.pad(images - fill, (0, 0, 1, 1, 1, 1)).reshape(n, (h + 2) * (w + 2), ch)
    rows0 = r0.clamp(-1, h).long() + 1
    rows1 = (r0 + 1).clamp(-1, h).long() + 1
    cols0 = c0.clamp(-1, w).long() + 1
    cols1 = (c0 + 1).clamp(-1, w).long() + 1

    def at(i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        index = (i * (w + 2) + j).reshape(n, out_height * out_width, 1).expand(n, out_height * out_width, ch)
        return flat.gather(1, index).reshape(n, out_height, out_width, ch)

    top = (1 - fx) * at(rows0, cols0) + fx * at(rows0, cols1)
    bottom = (1 - fx) * at(rows1, cols0) + fx * at(rows1, cols1)
    return fill + (1 - fy) * top + fy * bottom


class Identity:
    """The network sees the picture itself, in the memory format the call chose."""

    def __init__(self, channels_last: bool) -> None:
        self.channels_last = channels_last

    def __call__(self, picture: torch.Tensor, step: int) -> torch.Tensor:
        return picture if self.channels_last else picture.contiguous()


class AffineViews:
    """Step k's random affine view of each element's picture (SPEC §15.3): the draws of every step
    (``filtviz_core.transforms.affines`` of the elements' keys, and the one the last loss is measured
    under) go to the device once."""

    def __init__(
        self,
        keys: Sequence[Key],
        seed: int,
        steps: int,
        height: int,
        width: int,
        options: FourierOptions,
        device: torch.device,
        channels_last: bool,
    ) -> None:
        self.matrices = torch.from_numpy(draws.affines(seed, list(keys), range(steps + 1), height, width, options)).to(
            device
        )
        self.out_h, self.out_w = draws.output_size(height, width, options)
        self.fill, self.channels_last = options.pad_value, channels_last

    def __call__(self, picture: torch.Tensor, step: int) -> torch.Tensor:
        nhwc = picture.permute(0, 2, 3, 1)  # the sampler gathers whole pixels: NHWC
        seen = resample(nhwc, self.matrices[step], self.out_h, self.out_w, self.fill).permute(0, 3, 1, 2)
        return seen if self.channels_last else seen.contiguous()


def crop_views(
    images: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, noise: torch.Tensor, fill: float
) -> torch.Tensor:
    """NHWC ``images`` (n, H, W, C) -> their crops (n, V, H, W, C) (SPEC §17.3): ``rows`` (n, V, 4, H) and
    ``cols`` (n, V, 4, W) hold the two source indices, the second's weight and inside (1) / outside (0);
    ``top = tl + (tr - tl) fx``, ``bottom = bl + (br - bl) fx``, ``crop = top + (bottom - top) fy``, ``fill``
    outside, then ``+ noise``. Differentiable with respect to ``images``."""
    n, h, w, ch = images.shape
    views = rows.shape[1]
    flat = images.reshape(n, h * w, ch)
    r0, r1, fy = rows[:, :, 0].long(), rows[:, :, 1].long(), rows[:, :, 2]
    c0, c1, fx = cols[:, :, 0].long(), cols[:, :, 1].long(), cols[:, :, 2]
    ho, wo = rows.shape[-1], cols.shape[-1]

    def at(i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        index = (i[:, :, :, None] * w + j[:, :, None, :]).reshape(n, views * ho * wo, 1).expand(-1, -1, ch)
        return flat.gather(1, index).reshape(n, views, ho, wo, ch)

    fx5, fy5 = fx[:, :, None, :, None], fy[:, :, :, None, None]
    tl = at(r0, c0)
    top = tl + (at(r0, c1) - tl) * fx5
    bl = at(r1, c0)
    bottom = bl + (at(r1, c1) - bl) * fx5
    crop = top + (bottom - top) * fy5
    inside = (rows[:, :, 3, :, None] * cols[:, :, 3, None, :])[..., None] > 0
    return torch.where(inside, crop, torch.full((), fill, dtype=crop.dtype, device=crop.device)) + noise


def noise_field(keys: torch.Tensor, count: int, sigma: float) -> torch.Tensor:
    """(n, count) float32 noise of elements with ``keys`` (n, 3) int64, on their device: the same integer hash
    and float32 operations as ``filtviz_core.maco.noise_field`` (SPEC §17.3), computed where the crops are."""
    m0, m1, m2, m3 = maco.NOISE_MULTIPLIERS
    mask = maco.MASK32
    j = torch.arange(int(count), dtype=torch.int64, device=keys.device)

    def uniform(key: torch.Tensor) -> torch.Tensor:
        x = (j * m0 + key[:, None]) & mask
        x = ((x ^ (x >> 16)) * m1) & mask
        x = ((x ^ (x >> 15)) * m2) & mask
        x = ((x ^ (x >> 16)) * m3) & mask
        x = x ^ (x >> 16)
        return ((x >> 8).to(torch.float32) + 0.5) * (2.0**-24)

    u0, u1, u2 = (uniform(keys[:, i]) for i in range(3))
    g = torch.sqrt(-2.0 * torch.log(u0)) * torch.cos(float(np.float32(2.0 * np.pi)) * u1)
    s = float(np.float32(sigma))
    return s * g + s * (u2 - 0.5)


class CropViews:
    """Step k's ``crops`` noisy random crops of each element's picture (SPEC §17.3), drawn by numpy per step
    (``filtviz_core.maco.step_views`` of the elements' keys); the noise from numpy on a CPU, from the
    counter-based hash (:func:`noise_field`) computed on any other device. Returns ``(V * n, C, H, W)``, view-major."""

    def __init__(
        self,
        keys: Sequence[Key],
        seed: int,
        steps: int,
        height: int,
        width: int,
        options: MacoOptions,
        device: torch.device,
        channels_last: bool,
        channels: int = 3,
    ) -> None:
        self.keys, self.seed, self.steps = list(keys), int(seed), int(steps)
        self.height, self.width, self.options = int(height), int(width), options
        self.channels = int(channels)  # the noise's channels: the picture's
        self.views, self.fill = int(options.crops), float(options.fill)
        self.device, self.channels_last = device, channels_last

    def __call__(self, picture: torch.Tensor, step: int) -> torch.Tensor:
        d = maco.step_views(
            self.seed, self.keys, step, self.steps, self.height, self.width, self.options, self.channels
        )
        rows, cols = (torch.from_numpy(a).to(self.device) for a in (d.rows, d.cols))
        if self.device.type == "cpu":  # numpy's draws: cheaper than the hash on a CPU (SPEC §17.3)
            noise = torch.from_numpy(d.noise())
        else:  # the counter-based hash, on the device: no host draws, no copy
            v, h, w = rows.shape[1], rows.shape[-1], cols.shape[-1]
            noise = noise_field(torch.from_numpy(d.noise_keys).to(self.device), d.noise_count, d.sigma)
            noise = noise.reshape(-1, v, h, w, d.channels)
        crops = crop_views(picture.permute(0, 2, 3, 1), rows, cols, noise, self.fill)  # (n, V, H, W, 3)
        seen = crops.transpose(0, 1).reshape(-1, *crops.shape[2:]).permute(0, 3, 1, 2)
        return seen if self.channels_last else seen.contiguous()
