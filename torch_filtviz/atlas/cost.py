"""What one filter of a layer costs to render, so chunks can be split evenly across ranks.

The ascent runs the network up to the layer and back, every step, for every image; its time is
dominated by the convolutions (and linear layers) it passes. So a layer's cost is the multiply-add
count of those, at the atlas's size, counted on one probe pass with forward hooks: at 128 px a
block5_conv3 filter of VGG16 takes 7.9 times the FLOPs of a block1_conv2 one and 177 times those
of a block1_conv1 one (tested). Shallow layers also pay a per-image overhead (the step's
bookkeeping, the picture files), far more than their FLOPs say (measured in
``benchmarks/cpu/atlas_measure.json``), so :func:`image_costs` adds a tenth of the deepest
requested layer's FLOPs to every layer. Only the ratios matter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import nn

from torch_filtviz.atlas.receptive import grey_pass
from torch_filtviz.hooks import resolve_target


def _flops(module: nn.Module, output: torch.Tensor) -> int:
    """Forward FLOPs (2 per multiply-add) of one conv or linear call, for the batch it saw."""
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return 2 * (module.in_channels // module.groups) * kh * kw * int(output.numel())
    return 2 * cast(nn.Linear, module).in_features * int(output.numel())


def layer_costs(
    model: nn.Module, layers: Sequence[str], height: int, width: int | None = None, objective: str | None = None
) -> dict[str, int]:
    """``{layer: forward FLOPs of one image up to that layer}`` for a ``height`` x ``width`` input,
    from one gradient-free probe pass (at least 1 each; a target seen only through an activation
    function, not a module, gets the whole pass's count, an upper bound)."""
    width = height if width is None else width
    targets = [resolve_target(model, layer, objective) for layer in layers]
    total = 0
    seen: dict[str, int] = {}

    def count(module, args, output):
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += _flops(module, output)

    counters = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    # the marks run after the counters: a module's own FLOPs are in its output's count
    grey_pass(model, targets, height, width, counters, lambda name: seen.setdefault(name, total))
    return {layer: max(1, seen.get(target.name, total)) for layer, target in zip(layers, targets)}


#: Per-image overhead, as a share of the deepest requested layer's FLOPs (see the module's note).
OVERHEAD = 0.1


def image_costs(model: nn.Module, layers: Sequence[str], size: int, objective: str | None = None) -> dict[str, float]:
    """Estimated relative cost of one image of each layer: its FLOPs plus the per-image overhead."""
    flops = layer_costs(model, layers, size, size, objective)
    extra = OVERHEAD * max(flops.values(), default=1)
    return {layer: float(value) + extra for layer, value in flops.items()}
