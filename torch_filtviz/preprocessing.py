"""Each network's own input preprocessing, built into the model so callers always hand in RGB pixels.

The pixel method optimizes an image in pixel units (0-255, as a photo), whatever network looks at
it; the network sees that image through the preprocessing it was trained with:

* ``"caffe"``: Keras' VGG16 weights — RGB -> BGR, subtract the ImageNet BGR means, 0-255 scale;
* ``"imagenet"``: torchvision's weights — /255, then the ImageNet mean/std per RGB channel;
* ``"none"``: the network takes 0-255 pixels as they are;
* ``"unit"`` (/255), ``"symmetric"`` (/127.5 - 1), ``"mnist"`` ((x/255 - 0.1307)/0.3081): the same scaling
  for every channel, so they fit grey (1-channel) and multispectral models too.

The names and the channel rule are ``filtviz_core.preprocessing``'s, shared with tf_reference.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from filtviz_core import vgg16 as spec
from filtviz_core.preprocessing import (
    MNIST_MEAN,
    MNIST_STD,
    PREPROCESSING,  # noqa: F401  (re-exported: the --preprocess choices)
    check_preprocess,
)

# what a network gets when no preprocessing is named: torchvision's convention for RGB, ToTensor()'s otherwise
DEFAULT_PREPROCESS = "imagenet"
DEFAULT_PREPROCESS_NOT_RGB = "unit"

IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)


class CaffePreprocess(nn.Module):
    """Keras "caffe" preprocessing: RGB -> BGR, subtract the ImageNet BGR means, 0-255 scale."""

    mean: torch.Tensor  # a buffer

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(spec.CAFFE_MEAN_BGR).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flip(1) - self.mean.to(x.dtype)


class TorchvisionPreprocess(nn.Module):
    """torchvision's ImageNet preprocessing: /255, then mean/std per RGB channel."""

    mean: torch.Tensor  # buffers
    std: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN_RGB).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD_RGB).view(1, 3, 1, 1) * 255, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)


class ScalePreprocess(nn.Module):
    """A scaling of every channel alike (``unit``, ``symmetric``, ``mnist``): fits any channel count."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "unit":
            return x / 255.0
        if self.kind == "symmetric":
            return x / 127.5 - 1.0
        return (x / 255.0 - MNIST_MEAN) / MNIST_STD  # mnist

    def extra_repr(self) -> str:
        return self.kind


class CustomPreprocess(nn.Module):
    """A caller's own preprocessing function, as a module (so it moves with the model)."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


def make_preprocess(
    kind: str | nn.Module | Callable[[torch.Tensor], torch.Tensor], channels: int = 3
) -> tuple[nn.Module, str]:
    """(module, name) for a name of ``PREPROCESSING``, an ``nn.Module`` or a callable; a name that does not
    fit a ``channels``-channel input (imagenet and caffe are RGB-only) is refused in one line."""
    if isinstance(kind, nn.Module):
        return kind, preprocess_name(kind)
    if callable(kind) and not isinstance(kind, str):
        return CustomPreprocess(kind), "custom"
    check_preprocess(kind, channels)
    if kind in ("unit", "symmetric", "mnist"):
        return ScalePreprocess(kind), kind
    if kind == "imagenet":
        return TorchvisionPreprocess(), "imagenet"
    if kind == "caffe":
        return CaffePreprocess(), "caffe"
    return nn.Identity(), "none"


def preprocess_name(module: nn.Module | None) -> str:
    """The name under which run.json records a preprocessing module."""
    if isinstance(module, CaffePreprocess):
        return "caffe"
    if isinstance(module, TorchvisionPreprocess):
        return "imagenet"
    if isinstance(module, ScalePreprocess):
        return module.kind
    if module is None or isinstance(module, nn.Identity):
        return "none"
    return "custom"
