"""Transforms: what the network sees of the picture at step k (SPEC.md §15.3-§15.4, §16.1).

:class:`Identity` hands the picture over as it is (the pixel method; the fourier method without
transforms); :class:`AffineViews` applies each element's own affine bilinear resampling of step k.

The per-filter, per-step matrices come from ``filtviz_core.transforms`` (numpy draws seeded by
``(seed, filter, step)``); this module only applies them, with the sampler written out exactly as
tf_reference writes it (same formula, same order of operations), so both frameworks agree to
float rounding. Each batch element has its own matrix: a filter's picture never sees another's draw.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from filtviz_core import transforms as draws
from filtviz_core.algorithm import Key
from filtviz_core.methods import FourierOptions


def source_coordinates(matrices: torch.Tensor, out_height: int, out_width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows and columns ``(n, Ho, Wo)`` float32 of the source point of each output pixel:
    ``A00 * r + A01 * c + b0`` and ``A10 * r + A11 * c + b1`` (``matrices``: ``(n, 2, 3)`` float32)."""
    r = torch.arange(out_height, dtype=torch.float32, device=matrices.device)[None, :, None]
    c = torch.arange(out_width, dtype=torch.float32, device=matrices.device)[None, None, :]
    m = matrices[:, :, :, None, None]
    rows = m[:, 0, 0] * r + m[:, 0, 1] * c + m[:, 0, 2]
    cols = m[:, 1, 0] * r + m[:, 1, 1] * c + m[:, 1, 2]
    return rows, cols


def resample(images: torch.Tensor, matrices: torch.Tensor, out_height: int, out_width: int,
             fill: float) -> torch.Tensor:
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

    def __init__(self, keys: Sequence[Key], seed: int, steps: int, height: int, width: int,
                 options: FourierOptions, device: torch.device, channels_last: bool) -> None:
        self.matrices = torch.from_numpy(draws.affines(seed, list(keys), range(steps + 1), height, width,
                                                       options)).to(device)
        self.out_h, self.out_w = draws.output_size(height, width, options)
        self.fill, self.channels_last = options.pad_value, channels_last

    def __call__(self, picture: torch.Tensor, step: int) -> torch.Tensor:
        nhwc = picture.permute(0, 2, 3, 1)  # the sampler gathers whole pixels: NHWC
        seen = resample(nhwc, self.matrices[step], self.out_h, self.out_w, self.fill).permute(0, 3, 1, 2)
        return seen if self.channels_last else seen.contiguous()
