"""Input gradients of the filter objective (mean pre-activation over the interior) from identical numpy
images: Keras through the independent implementation of parity_tests/spec.py, torch through
torch_filtviz's own filter_objective (its hooks and border rule): cosine >= 0.99998 per filter,
objective values within 1e-5 relative."""

from __future__ import annotations

import pytest

from filtviz_core.algorithm import initial_images
from filtviz_core.vgg16 import CONV_NAMES, FILTER_COUNTS
from parity_tests.compare import Report
from parity_tests.vgg_parity import gradient_checks

FAST_LAYERS = ["block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3"]


def filters_of(layer: str, n: int) -> list[int]:
    """n filters spread over the layer (first, last and between), not just the first few."""
    count = FILTER_COUNTS[layer]
    return sorted({round(i * (count - 1) / max(1, n - 1)) for i in range(n)})


@pytest.mark.parametrize("layer", FAST_LAYERS)
def test_gradients_agree_at_the_spec_init(layer, keras_vgg, torch_vgg):
    filters = filters_of(layer, 3)
    report = Report(gradient_checks(keras_vgg, torch_vgg, layer, filters, initial_images(filters, 64, 0)))
    assert report.passed, report.summary()


def test_gradients_agree_on_the_photo(keras_vgg, torch_vgg, photo):
    """A structured image, not only grey noise: every filter sees the same photo."""
    layer, filters = "block3_conv1", [0, 100, 255]
    x = photo.repeat(len(filters), axis=0)
    report = Report(gradient_checks(keras_vgg, torch_vgg, layer, filters, x))
    assert report.passed, report.summary()


@pytest.mark.slow
@pytest.mark.parametrize("layer", CONV_NAMES)
def test_gradients_agree_everywhere(layer, keras_vgg, torch_vgg):
    filters = filters_of(layer, 8)
    report = Report(gradient_checks(keras_vgg, torch_vgg, layer, filters, initial_images(filters, 64, 3)))
    assert report.passed, report.summary()
