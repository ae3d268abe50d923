"""The packages' feature_maps of the sample photo agree as the raw activations do (<= 2e-5)."""

from __future__ import annotations

from filtviz_core.images import load_image
from filtviz_core.vgg16 import CONV_NAMES
from parity_tests.compare import Report
from parity_tests.vgg_parity import feature_map_checks


def test_feature_maps_of_the_sample_photo(keras_vgg, torch_vgg):
    photo = load_image(size=128)  # (H, W, 3) uint8, as a user hands it over
    report = Report(feature_map_checks(keras_vgg, torch_vgg, photo, CONV_NAMES + ("block5_pool",)))
    assert len(report.checks) == 3 * 14
    assert report.passed, report.summary()
