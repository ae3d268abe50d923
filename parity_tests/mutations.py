"""Planted porting bugs: each one changes what the torch side computes, the way a real port goes wrong.

A :class:`Mutation` is planted through the product itself, never through a re-implementation:
it modifies a deep copy of torch_filtviz's VGG16 (weights, padding, pooling, preprocessing
module, a ReLU), or changes an argument of torch_filtviz's own ascent/objective (learning rate,
objective kind), or narrows the border rule that torch_filtviz's objective reads from
``filtviz_core.algorithm`` while the torch side runs. The Keras reference is never touched.
:func:`torch_side` turns a mutation (or none) into a :class:`TorchSide` for the checks of
:mod:`parity_tests.vgg_parity`.

The suite's tests (``test_mutations.py``) and the sweep (``python -m parity_tests.sweep``) plant
these; the sweep measures in how many configurations each one is caught.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from filtviz_core.vgg16 import CAFFE_MEAN_BGR, TORCH_CONV_INDEX, TORCH_POOL_INDEX


@dataclass
class TorchSide:
    """What the torch side runs: a model, and the ascent/objective arguments it is run with.

    ``lr_scale`` multiplies the learning rate of the ascent; ``objective`` replaces the objective
    kind asked for (None: the same as the reference); ``border`` replaces the objective's border
    width while torch code runs (None: the spec's).
    """

    model: Any
    lr_scale: float = 1.0
    objective: str | None = None
    border: int | None = None

    def objective_for(self, asked: str) -> str:
        return self.objective or asked

    @contextmanager
    def planted(self) -> Iterator[None]:
        """The context every torch call of this side runs in (a border rule change, if any)."""
        if self.border is None:
            yield
            return
        from filtviz_core import algorithm

        saved = algorithm.BORDER
        algorithm.BORDER = self.border
        try:
            yield
        finally:
            algorithm.BORDER = saved


@dataclass(frozen=True)
class Mutation:
    """One planted bug: ``mutate`` edits a copy of the model in place; the other fields change how
    the torch side is run (see :class:`TorchSide`)."""

    name: str
    description: str
    mutate: Callable[[Any], None] | None = None
    lr_scale: float = 1.0
    objective: str | None = None
    border: int | None = None
    tags: tuple[str, ...] = field(default=())

    def apply(self, model: Any) -> TorchSide:
        """A :class:`TorchSide` running a mutated deep copy of ``model`` (``model`` is not touched)."""
        mutant = copy.deepcopy(model) if self.mutate is not None else model
        if self.mutate is not None:
            self.mutate(mutant)
        return TorchSide(mutant, self.lr_scale, self.objective, self.border)


def torch_side(model: Any, mutation: Mutation | None = None) -> TorchSide:
    """The torch side for ``model``, with ``mutation`` planted (None: the correct port)."""
    return TorchSide(model) if mutation is None else mutation.apply(model)


# --- the edits ----------------------------------------------------------------------------------------


def _conv(model: Any, layer: str) -> Any:
    return model.features[TORCH_CONV_INDEX[layer]]


def _set_weight(model: Any, layer: str, weight: np.ndarray) -> None:
    import torch

    with torch.no_grad():
        _conv(model, layer).weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))


def _weight(model: Any, layer: str) -> np.ndarray:
    return _conv(model, layer).weight.detach().cpu().numpy().copy()


def perturb_one_filter(model: Any) -> None:
    """block3_conv1 filter 7 scaled by 1 + 1e-3."""
    w = _weight(model, "block3_conv1")
    w[7] *= 1 + 1e-3
    _set_weight(model, "block3_conv1", w)


def swap_rgb_bgr(model: Any) -> None:
    """RGB fed where the weights expect BGR (the mean is still subtracted, in BGR order)."""
    import torch

    class NoFlip(torch.nn.Module):
        def forward(self, x):
            return x - torch.tensor(CAFFE_MEAN_BGR, device=x.device).view(1, 3, 1, 1)

    model.preprocess = NoFlip()


def drop_mean(model: Any) -> None:
    """BGR, but the ImageNet means never subtracted."""
    import torch

    class NoMean(torch.nn.Module):
        def forward(self, x):
            return x.flip(1)

    model.preprocess = NoMean()


def hwio_read_as_iohw(model: Any) -> None:
    """block1_conv2 (64 -> 64): the HWIO kernel transposed as if it were IOHW: in/out channels swapped."""
    _set_weight(model, "block1_conv2", _weight(model, "block1_conv2").transpose(1, 0, 2, 3))


def hw_swapped(model: Any) -> None:
    """block1_conv1: kernel rows and columns exchanged (OIWH instead of OIHW)."""
    _set_weight(model, "block1_conv1", _weight(model, "block1_conv1").transpose(0, 1, 3, 2))


def skip_relu(model: Any) -> None:
    """block2_conv1's ReLU left out."""
    import torch

    model.features[TORCH_CONV_INDEX["block2_conv1"] + 1] = torch.nn.Identity()


def drop_bias(model: Any) -> None:
    """block3_conv2 built with ``bias=False`` (its bias never loaded)."""
    import torch

    with torch.no_grad():
        _conv(model, "block3_conv2").bias.zero_()


def valid_padding(model: Any) -> None:
    """block2_conv2 with 'valid' padding instead of 'same': its map loses one pixel at every edge."""
    _conv(model, "block2_conv2").padding = (0, 0)


def shifted_padding(model: Any) -> None:
    """block2_conv2 padded 'same' as 2 px at the bottom/right instead of 1 px all round: same shape,
    content shifted by 1 px (what a hand-written asymmetric padding gets wrong)."""
    import torch

    idx = TORCH_CONV_INDEX["block2_conv2"]
    conv = model.features[idx]
    conv.padding = (0, 0)
    model.features[idx] = torch.nn.Sequential(torch.nn.ZeroPad2d((0, 2, 0, 2)), conv)


def average_pooling(model: Any) -> None:
    """block2_pool as average pooling instead of max pooling."""
    import torch

    model.features[TORCH_POOL_INDEX["block2_pool"]] = torch.nn.AvgPool2d(2, 2)


def float16_weights(model: Any) -> None:
    """Every kernel and bias rounded through float16 (a half-precision copy of the weights file)."""
    import torch

    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())


MUTATIONS: dict[str, Mutation] = {
    m.name: m
    for m in (
        Mutation("perturb_one_filter_1e-3", "block3_conv1 filter 7 scaled by 1 + 1e-3", perturb_one_filter),
        Mutation("swap_rgb_bgr", "RGB fed where BGR is expected", swap_rgb_bgr),
        Mutation("drop_mean_subtraction", "caffe means never subtracted", drop_mean),
        Mutation("kernel_hwio_as_iohw", "block1_conv2 kernel read as IOHW (in/out swapped)", hwio_read_as_iohw),
        Mutation("kernel_h_w_swapped", "block1_conv1 kernel rows and columns exchanged", hw_swapped),
        Mutation("skip_relu", "block2_conv1's ReLU left out", skip_relu),
        Mutation(
            "border_crop_1", "objective drops 1 position at each edge instead of 2", border=1, tags=("objective",)
        ),
        Mutation(
            "border_crop_3", "objective drops 3 positions at each edge instead of 2", border=3, tags=("objective",)
        ),
        Mutation(
            "objective_after_relu",
            "objective taken after the ReLU (post_relu) instead of before",
            objective="post_relu",
            tags=("objective",),
        ),
        Mutation("bias_dropped", "block3_conv2 without its bias", drop_bias, tags=("new",)),
        Mutation("valid_padding", "block2_conv2 with 'valid' padding instead of 'same'", valid_padding, tags=("new",)),
        Mutation(
            "shifted_padding",
            "block2_conv2 'same' padding as 2 px bottom/right (1-px shift, same shape)",
            shifted_padding,
            tags=("new",),
        ),
        Mutation("average_pooling", "block2_pool averages instead of taking the max", average_pooling, tags=("new",)),
        Mutation("float16_weights", "all weights rounded through float16", float16_weights, tags=("new",)),
        Mutation("lr_x1.01", "ascent learning rate 1.01 instead of 1", lr_scale=1.01, tags=("new", "ascent")),
    )
}
