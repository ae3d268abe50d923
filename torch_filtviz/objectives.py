"""The objective: what the ascent maximizes for each filter (tf_reference/SPEC.md §5).

Per batch element, the mean of its own filter's map over the interior (the border rule of
``filtviz_core.algorithm.interior``), computed in fp32 whatever the network's precision.
:func:`filter_objective` is the same quantity as a plain differentiable function of pixel images,
for callers that want values or input gradients without running an ascent (the parity suite).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from filtviz_core import algorithm as alg


def interior_mean(act: torch.Tensor, index: torch.Tensor, rows: torch.Tensor, channel_dim: int = 1) -> torch.Tensor:
    """Per element ``rows[i]``: mean of channel ``index[i]`` over the interior of its map, in fp32.

    ``act`` is (N, C, H, W) (``channel_dim=1``), (N, H, W, C) (``channel_dim=-1``, e.g. the output
    of an ``nn.Linear`` applied to channels-last maps) or (N, C) units.
    """
    if act.ndim == 2:
        return act[rows, index].float()
    if channel_dim in (-1, act.ndim - 1):
        own = act[rows, :, :, index]  # (n, h, w)
    else:
        own = act[rows, index]  # (n, h, w)
    hs, ws = alg.interior(own.shape[1], own.shape[2])
    return own[:, hs, ws].float().mean(dim=(1, 2))


def filter_objective(model: nn.Module, layer: str, filters: int | str | Iterable[int], images: torch.Tensor,
                     objective: str = alg.DEFAULT_OBJECTIVE) -> torch.Tensor:
    """The objective of each filter for its own image: ``(F,)`` fp32, differentiable w.r.t. ``images``.

    ``images``: (F, 3, H, W) RGB pixels (0-255), one per filter, on the model's device;
    ``filters``: F indices (or a string such as ``"0-3"``). The forward pass stops right after the
    layer, exactly as in the ascent, so ``torch.autograd.grad(values.sum(), images)`` gives each
    filter's input gradient.
    """
    from torch_filtviz.hooks import capture, resolve_target

    alg.check_objective(objective)
    target = resolve_target(model, layer, objective)
    with capture(model, target) as cap:
        act = cap(images)[target.name]
    count = act.shape[-1] if getattr(target, "channel_dim", 1) in (-1, act.ndim - 1) and act.ndim == 4 else act.shape[1]
    chosen = alg.parse_filters(filters, int(count), layer)
    if len(chosen) != images.shape[0]:
        raise ValueError(f"{len(chosen)} filters for {images.shape[0]} images: give one image per filter")
    index = torch.tensor(chosen, device=images.device)
    rows = torch.arange(len(chosen), device=images.device)
    return interior_mean(act, index, rows, getattr(target, "channel_dim", 1))
