"""The comparison core on its own: its metrics, and a second small CNN ported from Keras to torch
(the core knows nothing about VGG16)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from parity_tests import small_cnn
from parity_tests.compare import (Check, CurveBounds, Report, check_curves, compare, cosine, curve_relative_diff,
                                  pearson, relative_max_diff)


@pytest.fixture(scope="module")
def weights():
    return small_cnn.neutral_weights(seed=0)


@pytest.fixture(scope="module")
def inputs():
    return np.random.default_rng(7).uniform(-1, 1, (4, small_cnn.INPUT_SIZE, small_cnn.INPUT_SIZE, 3)).astype(np.float32)


def test_small_cnn_port_agrees(weights, inputs):
    report = compare(small_cnn.keras_model(weights), small_cnn.torch_model(weights), small_cnn.LAYER_MAP, inputs)
    assert len(report.checks) == 3 * len(small_cnn.LAYER_MAP)
    assert report.passed, report.summary()
    as_json = json.loads(json.dumps(report.to_dict()))
    assert as_json["passed"] is True and as_json["n_failed"] == 0
    assert report.to_markdown().count("\n") == len(report.checks) + 1


@pytest.mark.parametrize("bug", ["dense_not_transposed", "conv_kernel_hw_swapped", "bias_dropped"])
def test_small_cnn_porting_bugs_are_caught(bug, weights, inputs):
    model = small_cnn.torch_model(weights)
    with torch.no_grad():
        if bug == "dense_not_transposed":  # a (16, 10) kernel reshaped instead of transposed
            model.logits.weight.copy_(torch.from_numpy(weights["logits/kernel"].reshape(10, 16)))
        elif bug == "conv_kernel_hw_swapped":  # HWIO -> OIWH instead of OIHW
            model.conv2.weight.copy_(torch.from_numpy(np.ascontiguousarray(weights["conv2/kernel"].transpose(3, 2, 1, 0))))
        else:
            model.conv3.bias.zero_()
    report = compare(small_cnn.keras_model(weights), model, small_cnn.LAYER_MAP, inputs)
    assert not report.passed
    first_bad = {"dense_not_transposed": "logits", "conv_kernel_hw_swapped": "conv2", "bias_dropped": "conv3"}[bug]
    bad_layers = {c.name.split("/")[1] for c in report.failures()}
    assert first_bad in bad_layers
    earlier = list(small_cnn.LAYER_MAP)[: list(small_cnn.LAYER_MAP).index(first_bad)]
    assert not bad_layers & set(earlier), "layers before the bug must still agree"


def test_preprocessing_callables_apply_per_side(weights, inputs):
    """Each side's preprocessing runs on its own copy: identical callables keep the models equal."""
    def scale(x):
        x *= 2.0  # in place on purpose: compare must hand each side a copy
        return x

    report = compare(small_cnn.keras_model(weights), small_cnn.torch_model(weights), {"conv1": "relu1"}, inputs,
                     keras_preprocess=scale, torch_preprocess=scale)
    assert report.passed, report.summary()
    one_sided = compare(small_cnn.keras_model(weights), small_cnn.torch_model(weights), {"conv1": "relu1"}, inputs,
                        keras_preprocess=scale)
    assert not one_sided.passed


def test_metrics():
    a = np.array([1.0, -2.0, 4.0])
    assert relative_max_diff(a, a + [0, 0, 0.004]) == pytest.approx(1e-3)
    assert relative_max_diff(a, a[:2]) == math.inf
    assert cosine(a, 3 * a) == pytest.approx(1.0) and cosine(a, -a) == pytest.approx(-1.0)
    assert pearson(a, 2 * a + 5) == pytest.approx(1.0)
    # A curve crossing zero is measured against 1% of its peak, not against ~0.
    curve = np.array([-100.0, -1e-6, 100.0])
    assert curve_relative_diff(curve, curve + [0, 0.5, 0]) == pytest.approx(0.5 / 1.0)
    assert curve_relative_diff(curve, curve * (1 + 1e-3)) == pytest.approx(1e-3)


def test_checks_and_report():
    assert Check("x", 1e-6, 1e-5).passed and not Check("x", 2e-5, 1e-5).passed
    assert not Check("x", math.nan, 1e-5).passed, "NaN must never pass"
    assert Check("c", 0.99999, 0.9999, ">=").passed and not Check("c", 0.999, 0.9999, ">=").passed
    assert Check("d", 0.0, 0.0, "==").passed and not Check("d", 1.0, 0.0, "==").passed
    assert not Report().passed, "an empty report proves nothing"
    curves = check_curves("f", np.arange(101.0), np.arange(101.0) * 1.01,
                          CurveBounds(max_rel=1e-3, min_pearson=0.999, final_rel=1e-3, gain_rel=1e-3), gain_steps=(10, 100))
    report = Report(curves)
    assert [c.name.rsplit("/", 1)[1] for c in report.failures()] == ["max_rel_diff", "final_rel_diff", "gain_10_100_rel_diff"]
    assert report["losses/f/pearson"].passed
