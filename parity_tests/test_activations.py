"""Same weights file in both frameworks -> the same activations at every conv layer (the first
parity test), on a real photo and on noise: max abs diff / max abs activation <= 2e-5 and
per-channel mean/std within 1e-5 of the layer's largest activation (parity_tests.checks)."""

from __future__ import annotations

import numpy as np
import pytest
from keras.applications.vgg16 import preprocess_input

from filtviz_core.vgg16 import CONV_NAMES
from parity_tests.compare import compare


def keras_input(x: np.ndarray) -> np.ndarray:
    """Keras' own preprocessing (caffe), as a Keras user would feed the model."""
    return preprocess_input(np.array(x, np.float32, copy=True))


@pytest.mark.parametrize("which", ["photo", "noise"])
def test_every_conv_layer_agrees(which, request, keras_vgg, torch_vgg, vgg_layer_map):
    images = request.getfixturevalue(which)
    report = compare(keras_vgg, torch_vgg, vgg_layer_map, images, keras_preprocess=keras_input, label=which)
    assert len(report.checks) == 3 * len(CONV_NAMES)
    assert report.passed, report.summary()
    # Not vacuous: the activations are large and the differences are not exactly zero everywhere.
    assert max(c.value for c in report.checks) > 0


def test_pools_agree(keras_vgg, torch_vgg, photo):
    pools = {f"block{b}_pool": torch_vgg.aliases[f"block{b}_pool"] for b in range(1, 6)}
    report = compare(keras_vgg, torch_vgg, pools, photo, keras_preprocess=keras_input, label="photo")
    assert report.passed, report.summary()


def test_torch_gets_raw_pixels_keras_gets_caffe_input(keras_vgg, torch_vgg, vgg_layer_map, photo):
    """The input convention matters: feeding torch's PixelModel caffe input (double preprocessing) fails."""
    report = compare(
        keras_vgg,
        torch_vgg,
        {"block1_conv1": vgg_layer_map["block1_conv1"]},
        photo,
        keras_preprocess=keras_input,
        torch_preprocess=keras_input,
    )
    assert not report.passed
