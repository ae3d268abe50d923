"""A residual SeparableConv2D network in Keras and its hand-written PyTorch ports, for the port validator.

The Keras model (:func:`keras_model`, saved by :func:`save_keras` as ``.hdf5``) has what real ports
get wrong: SeparableConv2D, BatchNormalization (Keras' epsilon 1e-3), a residual Add with a 1x1
shortcut, a 'same' MaxPool 3x3/2 (Keras pads 0 before and 1 after an even-sized input), global average
pooling and a Dense head; 1-channel 64x64 input by default. Its random weights are seeded.

Torch builders (``--torch parity_tests.port_fixtures:NAME``), untrained (use ``--transfer-weights``):

==============================  ======================================================================
``residual_port``               the correct port, 1 channel ('same' pooling as a -inf pad of (0, 1)
                                then ``MaxPool2d(3, 2)``; SeparableConv2D as one module holding a
                                depthwise conv and a 1x1 conv)
``residual_port_padding_bug``   the classic bug: ``MaxPool2d(3, 2, padding=1)`` for 'same' pooling
``residual_port_rgb``           the correct port of the 3-channel variant (``save_keras(channels=3)``)
==============================  ======================================================================
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

SIZE = 64
SEED = 0


def keras_model(channels: int = 1, size: int | None = SIZE, seed: int = SEED) -> Any:
    """The Functional Keras network with seeded random weights (BatchNorm statistics included)."""
    import keras

    inp = keras.Input((size, size, channels), name="pixels")
    x = keras.layers.Conv2D(8, 3, padding="same", name="stem")(inp)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool")(x)
    y = keras.layers.SeparableConv2D(16, 3, padding="same", activation="relu", name="sep1")(x)
    y = keras.layers.SeparableConv2D(16, 3, padding="same", name="sep2")(y)
    y = keras.layers.BatchNormalization(name="sep2_bn")(y)
    s = keras.layers.Conv2D(16, 1, name="shortcut")(x)
    x = keras.layers.Add(name="add")([y, s])
    x = keras.layers.ReLU(name="add_relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(5, name="logits")(x)
    model = keras.Model(inp, out, name="residual_sep")
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        values = []
        for w in layer.weights:
            name = w.path.rsplit("/", 1)[-1]
            shape = tuple(w.shape)
            fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
            if name == "moving_variance":
                values.append(rng.uniform(0.5, 1.5, shape))
            elif name == "gamma":
                values.append(rng.uniform(0.8, 1.2, shape))
            elif len(shape) > 1:
                values.append(rng.standard_normal(shape) * np.sqrt(2.0 / fan_in))
            else:
                values.append(0.1 * rng.standard_normal(shape))
        if values:
            layer.set_weights([np.asarray(v, np.float32) for v in values])
    return model


def save_keras(path: str | os.PathLike[str], channels: int = 1, size: int | None = SIZE) -> Path:
    """The Keras model saved to ``path`` (``.hdf5``/``.h5``: Keras' legacy HDF5 layout; ``.keras``: Keras 3)."""
    path = Path(path)
    keras_model(channels, size).save(path)
    return path


# --- the torch ports --------------------------------------------------------------------------------


def _modules():
    import torch
    import torch.nn.functional as F
    from torch import nn

    class SamePool(nn.Module):
        """Keras' padding='same' max pooling: pad (total = what the stride leaves) 0 before and the rest
        after with -inf, then pool without padding."""

        def __init__(self, kernel: int, stride: int) -> None:
            super().__init__()
            self.kernel, self.stride = kernel, stride
            self.pool = nn.MaxPool2d(kernel, stride)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            pads = []
            for n in (x.shape[3], x.shape[2]):  # F.pad: last dimension first
                total = max((-(-n // self.stride) - 1) * self.stride + self.kernel - n, 0)
                pads += [total // 2, total - total // 2]
            return self.pool(F.pad(x, pads, value=float("-inf")))

    class SeparableConv2d(nn.Module):
        """Keras' SeparableConv2D: a depthwise conv (groups = in_channels, no bias) then a 1x1 conv."""

        def __init__(self, cin: int, cout: int, kernel: int = 3) -> None:
            super().__init__()
            self.depthwise = nn.Conv2d(cin, cin, kernel, padding=kernel // 2, groups=cin, bias=False)
            self.pointwise = nn.Conv2d(cin, cout, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.pointwise(self.depthwise(x))

    class Add(nn.Module):
        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return a + b

    class GlobalAvgPool(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.mean(dim=(2, 3))

    class ResidualPort(nn.Module):
        def __init__(self, channels: int, pool: nn.Module) -> None:
            super().__init__()
            self.stem = nn.Conv2d(channels, 8, 3, padding=1)
            self.stem_bn = nn.BatchNorm2d(8, eps=1e-3)
            self.stem_relu = nn.ReLU()
            self.pool = pool
            self.sep1 = SeparableConv2d(8, 16)
            self.sep1_relu = nn.ReLU()
            self.sep2 = SeparableConv2d(16, 16)
            self.sep2_bn = nn.BatchNorm2d(16, eps=1e-3)
            self.shortcut = nn.Conv2d(8, 16, 1)
            self.add = Add()
            self.add_relu = nn.ReLU()
            self.gap = GlobalAvgPool()
            self.logits = nn.Linear(16, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.pool(self.stem_relu(self.stem_bn(self.stem(x))))
            y = self.sep2_bn(self.sep2(self.sep1_relu(self.sep1(x))))
            x = self.add_relu(self.add(y, self.shortcut(x)))
            return self.logits(self.gap(x))

    return nn, SamePool, ResidualPort


def _build(channels: int, bug: bool) -> Any:
    import torch

    nn, SamePool, ResidualPort = _modules()
    torch.manual_seed(0)
    pool = nn.MaxPool2d(3, 2, padding=1) if bug else SamePool(3, 2)
    return ResidualPort(channels, pool).eval()


def residual_port() -> Any:
    """The correct port of the 1-channel model (untrained: carry the weights with --transfer-weights)."""
    return _build(1, bug=False)


def residual_port_padding_bug() -> Any:
    """The port with the classic bug: ``MaxPool2d(3, 2, padding=1)`` (1 px of padding on every side, where
    Keras' 'same' pads 0 before and 1 after a 64 px input): pool's output is shifted by one pixel."""
    return _build(1, bug=True)


def residual_port_rgb() -> Any:
    """The correct port of the 3-channel variant."""
    return _build(3, bug=False)
