"""Fixtures of the parity suite: both VGG16s from the same verified weights file, loaded once per
session, and the fixed inputs every case starts from (numpy, NHWC, RGB pixel units)."""

from __future__ import annotations

import numpy as np
import pytest

from filtviz_core.images import load_image
from filtviz_core.vgg16 import CONV_NAMES

SIZE = 64  # px: small enough for the CPU, large enough for every block (block5 maps are 4x4)


@pytest.fixture(scope="session")
def keras_vgg(weights_file):
    from tf_reference.model import load_vgg16

    return load_vgg16(weights_file.path)


@pytest.fixture(scope="session")
def torch_vgg(weights_file):
    from torch_filtviz.models import load_vgg16

    return load_vgg16(weights_file.path)


@pytest.fixture(scope="session")
def vgg_layer_map(torch_vgg):
    """Keras conv name -> torch module with the same (post-ReLU) output."""
    return {name: torch_vgg.aliases[name] for name in CONV_NAMES}


@pytest.fixture(scope="session")
def photo():
    """The sample photo (Grace Hopper), 64x64, as a (1, H, W, 3) float32 batch."""
    return load_image(size=SIZE, fit="stretch")[None].astype(np.float32)  # the photo the bounds were measured on


@pytest.fixture(scope="session")
def noise():
    """Uniform noise over the full pixel range, (1, 64, 64, 3) float32."""
    return np.random.default_rng(1234).uniform(0, 255, (1, SIZE, SIZE, 3)).astype(np.float32)
