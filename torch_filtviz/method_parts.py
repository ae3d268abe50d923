"""How each method of ``filtviz_core.methods.REGISTRY`` is assembled from the loop's parts, in torch.

A method is (parameterization, transform, optimizer) with its defaults; the objective is the
caller's. Adding a method: its entry in the registry, its parts, and one builder here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from filtviz_core import algorithm as alg
from filtviz_core.algorithm import Key
from filtviz_core.methods import FourierOptions, MacoOptions
from torch_filtviz.loop import Optimizer, Parameterization
from torch_filtviz.optimizers import Adam, NAdam, NormalizedStep
from torch_filtviz.parameterizations import FourierParam, MacoParam, PixelParam
from torch_filtviz.transforms import AffineViews, CropViews, Identity


@dataclass(frozen=True)
class Setting:
    """What a chunk's parts are built from (the same for every chunk of a call)."""

    seed: int
    steps: int
    lr: float
    height: int
    width: int
    options: FourierOptions | MacoOptions | None
    device: torch.device
    channels_last: bool
    clip: bool = False
    init: np.ndarray | None = None  # the pixel method's explicit starts, one per element of the call
    channels: int = 3  # the pictures' channels: the model's input channels (1 grey, 3 RGB, N multispectral)


Parts = tuple[Parameterization, Callable[[torch.Tensor, int], torch.Tensor], Optimizer]


def pixel(keys: Sequence[Key], rows: slice, s: Setting) -> Parts:
    """SPEC §2-§9: the picture itself, seen as it is, RMS-normalised steps."""
    x0 = s.init[rows] if s.init is not None else alg.initial_images(list(keys), s.height, s.seed, s.channels)
    return PixelParam(x0, s.device, s.channels_last), Identity(s.channels_last), NormalizedStep(s.lr, s.clip)


def fourier(keys: Sequence[Key], rows: slice, s: Setting) -> Parts:
    """SPEC §15: a decorrelated spectrum, random affine views, Adam."""
    o = s.options
    assert isinstance(o, FourierOptions)
    param = FourierParam(keys, s.seed, s.height, s.width, o, s.device, s.channels)
    view = (
        AffineViews(keys, s.seed, s.steps, s.height, s.width, o, s.device, s.channels_last)
        if o.transforms
        else Identity(s.channels_last)
    )
    return param, view, Adam(param.theta, s.lr, o.beta1, o.beta2, o.eps)


def maco_method(keys: Sequence[Key], rows: slice, s: Setting) -> Parts:
    """SPEC §17: a phase under a fixed natural-image magnitude, noisy random crops (V views per picture), NAdam."""
    o = s.options
    assert isinstance(o, MacoOptions)
    param = MacoParam(keys, s.seed, s.height, s.width, o, s.device, s.channels)
    view = CropViews(keys, s.seed, s.steps, s.height, s.width, o, s.device, s.channels_last, s.channels)
    return param, view, NAdam(param.theta, s.lr, o.beta1, o.beta2, o.eps)


BUILDERS: dict[str, Callable[[Sequence[Key], slice, Setting], Parts]] = {
    "pixel": pixel,
    "fourier": fourier,
    "maco": maco_method,
}


def build(method: str, keys: Sequence[Key], rows: slice, setting: Setting) -> Parts:
    """The (parameterization, transform, optimizer) of ``method`` for the elements ``keys``, which are
    rows ``rows`` of the call (where an explicit init is taken from)."""
    return BUILDERS[method](keys, rows, setting)
