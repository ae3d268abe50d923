"""The suite catches real porting bugs: each mutation below, planted on the torch side in memory,
must make the parity check fail (and the unmutated model passes the same check, see
test_activations/test_gradients)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from keras.applications.vgg16 import preprocess_input

from filtviz_core.algorithm import initial_images
from filtviz_core.vgg16 import CAFFE_MEAN_BGR, TORCH_CONV_INDEX
from parity_tests.compare import Report, compare
from parity_tests.vgg_parity import ascent_checks, gradient_checks, init_for, run_keras, run_torch


def keras_input(x):
    return preprocess_input(np.array(x, np.float32, copy=True))


def set_weight(model, layer: str, weight: np.ndarray) -> None:
    with torch.no_grad():
        model.features[TORCH_CONV_INDEX[layer]].weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))


def weight_of(model, layer: str) -> np.ndarray:
    return model.features[TORCH_CONV_INDEX[layer]].weight.detach().numpy().copy()


class NoFlip(torch.nn.Module):  # RGB fed where BGR is expected
    def forward(self, x):
        return x - torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)


class NoMean(torch.nn.Module):  # BGR, but the mean never subtracted
    def forward(self, x):
        return x.flip(1)


def perturb_filter(model):
    w = weight_of(model, "block3_conv1")
    w[7] *= 1 + 1e-3
    set_weight(model, "block3_conv1", w)


def hwio_read_as_iohw(model):
    """block1_conv2 (64 -> 64): the HWIO kernel transposed as if it were IOHW: in/out channels swapped."""
    w = weight_of(model, "block1_conv2")  # OIHW
    set_weight(model, "block1_conv2", w.transpose(1, 0, 2, 3))


def hw_swapped(model):
    """block1_conv1: kernel rows and columns exchanged (OIWH instead of OIHW)."""
    w = weight_of(model, "block1_conv1")
    set_weight(model, "block1_conv1", w.transpose(0, 1, 3, 2))


def skip_relu(model):
    model.features[TORCH_CONV_INDEX["block2_conv1"] + 1] = torch.nn.Identity()


def swap_rgb_bgr(model):
    model.preprocess = NoFlip()


def drop_mean(model):
    model.preprocess = NoMean()


MUTATIONS = {
    "perturb_one_filter_1e-3": perturb_filter,
    "swap_rgb_bgr": swap_rgb_bgr,
    "drop_mean_subtraction": drop_mean,
    "kernel_hwio_as_iohw": hwio_read_as_iohw,
    "kernel_h_w_swapped": hw_swapped,
    "skip_relu": skip_relu,
}


@pytest.fixture
def mutant(torch_vgg):
    return copy.deepcopy(torch_vgg)


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_activation_parity_catches(name, mutant, keras_vgg, vgg_layer_map, photo):
    MUTATIONS[name](mutant)
    report = compare(keras_vgg, mutant, vgg_layer_map, photo, keras_preprocess=keras_input)
    assert not report.passed, f"{name} went unnoticed: {report.summary()}"


@pytest.mark.parametrize("name", ["swap_rgb_bgr", "drop_mean_subtraction", "kernel_hwio_as_iohw"])
def test_gradient_parity_catches(name, mutant, keras_vgg):
    MUTATIONS[name](mutant)
    filters = [0, 1, 2]
    report = Report(gradient_checks(keras_vgg, mutant, "block2_conv1", filters, initial_images(filters, 64, 0)))
    assert not report.passed, f"{name} went unnoticed: {report.summary()}"


@pytest.mark.parametrize("border", [1, 3])
def test_off_by_one_border_crop_is_caught(border, keras_vgg, torch_vgg):
    filters = [0, 1, 2]
    report = Report(gradient_checks(keras_vgg, torch_vgg, "block2_conv1", filters, initial_images(filters, 64, 0),
                                    border=border))
    assert not report.passed
    assert {c.group for c in report.failures()} == {"gradients", "objective"}


def test_skipped_relu_before_objective_is_caught(keras_vgg, torch_vgg):
    """An objective taken after the ReLU (the post_relu/pre_relu mix-up) is caught too."""
    filters = [0, 1, 2]
    report = Report(gradient_checks(keras_vgg, torch_vgg, "block3_conv1", filters, initial_images(filters, 64, 0),
                                    relu_before=True))
    assert not report.passed


def test_loss_history_parity_catches_a_perturbed_filter(mutant, keras_vgg):
    """The ascent itself: 1e-3 on one block1_conv2 filter moves its loss curve beyond 1e-5."""
    w = weight_of(mutant, "block1_conv2")
    w[5] *= 1 + 1e-3
    set_weight(mutant, "block1_conv2", w)
    x0 = init_for([5], 64, 0)
    k = run_keras(keras_vgg, "block1_conv2", [5], x0, steps=20)
    t = run_torch(mutant, "block1_conv2", [5], x0, steps=20)
    report = Report(ascent_checks(k, t))
    assert not report.passed
    assert any("losses/block1_conv2/5/max_rel_diff" == c.name for c in report.failures())
