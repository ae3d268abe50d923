"""How many channels a model's input pictures have (1 grey, 3 RGB, N multispectral): given, or read
from the model's first convolution, so every forward pass (traces, probes, the ascent) builds pictures
of that many channels. No project imports: targets, probe and models all use it without cycles.

>>> from torch import nn
>>> from torch_filtviz.channels import input_channels
>>> input_channels(nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU()))
1
"""

from __future__ import annotations

from typing import Any

from torch import nn

DEFAULT_CHANNELS = 3
CONVOLUTIONS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d)


def first_convolution(model: nn.Module) -> tuple[str, Any] | None:
    """(module path, module) of the first convolution in the model's module order, or None."""
    return next(((p, m) for p, m in model.named_modules() if isinstance(m, CONVOLUTIONS)), None)


def input_channels(model: nn.Module) -> int:
    """The model's input channel count: a wrapped model's ``in_channels`` (given or read when wrapped), else
    the first convolution's ``in_channels``, else 3 (RGB)."""
    given = getattr(model, "in_channels", None)
    if isinstance(given, int) and not isinstance(given, bool) and not isinstance(model, CONVOLUTIONS):
        return given
    first = first_convolution(model)
    return int(first[1].in_channels) if first is not None else DEFAULT_CHANNELS
