"""Transformation robustness on the device: one affine bilinear resampling per step (SPEC.md §15.4).

The per-filter, per-step matrices come from ``filtviz_core.transforms`` (numpy draws seeded by
``(seed, filter, step)``); this module only applies them, with the sampler written out exactly as
tf_reference writes it (same formula, same order of operations), so both frameworks agree to
float rounding. Each batch element has its own matrix: a filter's picture never sees another's draw.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


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
