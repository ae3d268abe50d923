"""Transformation robustness, framework-free: the random draws and the affine map (SPEC.md §15.3-§15.4).

At every step the fourier method shows the network a randomly padded, shifted, zoomed and rotated
copy of the picture, so the optimizer cannot rely on patterns that only work at one exact pixel
position. The draws come from numpy, seeded by ``(seed, filter, step)``, so both frameworks apply
the identical transform and a filter's picture never depends on its batch.

Lucid's chain (pad, jitter, scale, rotate, jitter) is composed here into ONE affine map from
output pixels to source pixels, applied by one bilinear resampling (:func:`resample` is its numpy
reference); both frameworks write that sampler out the same way. Pixel ``(r, c)`` has its centre at
integer coordinates; the identity map returns the image exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from filtviz_core.algorithm import Key, seed_entropy
from filtviz_core.options import FourierOptions

# The draws of step k come from default_rng((seed, filter, TRANSFORM_STREAM, k)). The constant keeps
# them apart from the initial spectrum's rng((seed, filter)): numpy's SeedSequence pads short
# entropy with zeros, so rng((seed, filter, 0)) would repeat the initial spectrum's stream.
TRANSFORM_STREAM = 1


@dataclass(frozen=True)
class Draw:
    """One step's random transform of one filter's picture (offsets in pixels, angle in degrees)."""

    crop1: tuple[int, int]  # (rows, cols) cut off the top-left by the first jitter, 0..jitter
    scale: float
    angle: float
    crop2: tuple[int, int]  # the same for the second jitter, 0..jitter2


def output_size(height: int, width: int, options: FourierOptions) -> tuple[int, int]:
    """The size of the picture the network sees: ``H + 2 pad - jitter - jitter2`` (same for W)."""
    if not options.transforms:
        return int(height), int(width)
    extra = 2 * options.pad - options.jitter - options.jitter2
    return int(height) + extra, int(width) + extra


def draw(seed: int, filter_index: Key, step: int, options: FourierOptions) -> Draw:
    """The transform of step ``step`` for one filter, always drawn in this order: crop1 (rows, cols)
    as integers in [0, jitter], scale uniform in [low, high), angle uniform in [-rotate, rotate),
    crop2 as integers in [0, jitter2]."""
    rng = np.random.default_rng(seed_entropy(seed, filter_index, TRANSFORM_STREAM, int(step)))
    crop1 = rng.integers(0, options.jitter + 1, size=2)
    scale = rng.uniform(options.scale[0], options.scale[1])
    angle = rng.uniform(-options.rotate, options.rotate)
    crop2 = rng.integers(0, options.jitter2 + 1, size=2)
    return Draw((int(crop1[0]), int(crop1[1])), float(scale), float(angle), (int(crop2[0]), int(crop2[1])))


def affine(d: Draw, height: int, width: int, options: FourierOptions) -> np.ndarray:
    """(2, 3) float64 ``[A | b]``: output pixel (r, c) samples source pixel ``A @ (r, c) + b``.

    The chain, forward: pad by ``pad`` (grey), cut ``crop1`` off the top-left (canvas
    ``H + 2 pad - jitter``), zoom by ``scale`` and rotate by ``angle`` about that canvas' centre,
    cut ``crop2`` off the top-left (canvas :func:`output_size`). Inverted: with ``ctr`` the centre
    of the middle canvas and ``R = [[cos, sin], [-sin, cos]] / scale`` (rows, cols),
    ``source = R @ ((r, c) + crop2 - ctr) + ctr + crop1 - pad``.
    """
    if not options.transforms:
        return np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    mid = np.array([height + 2 * options.pad - options.jitter, width + 2 * options.pad - options.jitter], float)
    ctr = (mid - 1.0) / 2.0
    theta = np.deg2rad(d.angle)
    a = np.array([[np.cos(theta), np.sin(theta)], [-np.sin(theta), np.cos(theta)]]) / d.scale
    b = a @ (np.asarray(d.crop2, float) - ctr) + ctr + np.asarray(d.crop1, float) - options.pad
    return np.concatenate([a, b[:, None]], axis=1)


def affines(
    seed: int, filters: Sequence[Key], steps: Sequence[int], height: int, width: int, options: FourierOptions
) -> np.ndarray:
    """(len(steps), F, 2, 3) float32: every step's ``[A | b]`` for every filter, as both frameworks use them."""
    out = np.zeros((len(steps), len(filters), 2, 3), np.float32)
    for i, k in enumerate(steps):
        for j, f in enumerate(filters):
            out[i, j] = affine(draw(seed, f, k, options), height, width, options)
    return out


def source_coordinates(matrix: np.ndarray, out_height: int, out_width: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the source point of every output pixel, float32, computed as the frameworks
    do: ``A00 * r + A01 * c + b0`` and ``A10 * r + A11 * c + b1``, left to right, in float32."""
    m = np.asarray(matrix, np.float32)
    r = np.arange(out_height, dtype=np.float32)[:, None]
    c = np.arange(out_width, dtype=np.float32)[None, :]
    rows = m[0, 0] * r + m[0, 1] * c + m[0, 2]
    cols = m[1, 0] * r + m[1, 1] * c + m[1, 2]
    return rows.astype(np.float32), cols.astype(np.float32)


def resample(image: np.ndarray, matrix: np.ndarray, out_height: int, out_width: int, fill: float) -> np.ndarray:
    """The numpy reference of the bilinear sampler (SPEC.md §15.4), float64: (H, W, C) -> (Ho, Wo, C).

    With ``(y, x)`` a source point, ``r0 = floor(y)``, ``c0 = floor(x)``, ``fy = y - r0``,
    ``fx = x - c0`` and ``v(i, j) = image[i, j] - fill`` inside the image, 0 outside:
    ``out = fill + (1 - fy)((1 - fx) v(r0, c0) + fx v(r0, c0 + 1))
    + fy((1 - fx) v(r0 + 1, c0) + fx v(r0 + 1, c0 + 1))``,
    i.e. bilinear interpolation of the image surrounded by an endless border of ``fill``.
    """
    img = np.asarray(image, np.float64)
    h, w = img.shape[:2]
    rows, cols = source_coordinates(matrix, out_height, out_width)
    r0, c0 = np.floor(rows), np.floor(cols)
    fy, fx = (rows - r0).astype(np.float64)[..., None], (cols - c0).astype(np.float64)[..., None]
    r0, c0 = r0.astype(np.int64), c0.astype(np.int64)

    def v(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        inside = (i >= 0) & (i < h) & (j >= 0) & (j < w)
        vals = img[np.clip(i, 0, h - 1), np.clip(j, 0, w - 1)] - fill
        return np.where(inside[..., None], vals, 0.0)

    top = (1 - fx) * v(r0, c0) + fx * v(r0, c0 + 1)
    bottom = (1 - fx) * v(r0 + 1, c0) + fx * v(r0 + 1, c0 + 1)
    return fill + (1 - fy) * top + fy * bottom
