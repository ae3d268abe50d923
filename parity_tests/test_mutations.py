"""The suite catches real porting bugs: each planted bug of parity_tests/mutations.py, planted on the
torch side through the product itself (a mutated copy of torch_filtviz's VGG16, or torch_filtviz's
own ascent/objective arguments), must make the parity check it targets fail — while the unmutated
port passes the same checks (test_activations, test_gradients, test_ascent)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from filtviz_core.algorithm import initial_images
from filtviz_core.vgg16 import CONV_NAMES, TORCH_CONV_INDEX
from parity_tests.checks import Report
from parity_tests.mutations import MUTATIONS, torch_side
from parity_tests.vgg_parity import (
    activation_checks,
    activation_reference,
    ascent_checks,
    gradient_checks,
    init_for,
    run_keras,
    run_side,
    run_torch,
)

MODEL_BUGS = [name for name, m in MUTATIONS.items() if m.mutate is not None]
OBJECTIVE_BUGS = [name for name, m in MUTATIONS.items() if "objective" in m.tags]


@pytest.fixture(scope="module")
def act_ref(keras_vgg):
    return activation_reference(keras_vgg, seed=0, size=64)


def test_the_correct_port_passes_the_same_checks(act_ref, torch_vgg):
    report = Report(activation_checks(act_ref, torch_side(torch_vgg)))
    assert len(report.checks) == 2 * 3 * len(CONV_NAMES)
    assert report.passed, report.summary()


@pytest.mark.parametrize("name", MODEL_BUGS)
def test_activation_parity_catches(name, act_ref, torch_vgg):
    side = MUTATIONS[name].apply(torch_vgg)
    assert side.model is not torch_vgg, "bugs are planted in a copy"
    report = Report(activation_checks(act_ref, side))
    assert not report.passed, f"{name} went unnoticed: {report.summary()}"


def test_mutations_leave_the_original_model_alone(torch_vgg):
    before = {k: v.clone() for k, v in torch_vgg.state_dict().items()}
    for name in MODEL_BUGS:
        MUTATIONS[name].apply(torch_vgg)
    after = torch_vgg.state_dict()
    assert all(bool((before[k] == after[k]).all()) for k in before)
    assert type(torch_vgg.features[TORCH_CONV_INDEX["block2_conv1"] + 1]).__name__ == "ReLU"


@pytest.mark.parametrize("name", ["swap_rgb_bgr", "drop_mean_subtraction", "kernel_hwio_as_iohw", *OBJECTIVE_BUGS])
def test_gradient_parity_catches(name, keras_vgg, torch_vgg):
    """The gradient check runs torch_filtviz's own filter_objective: a preprocessing, kernel or
    objective bug (border rule off by one, objective after the ReLU) changes its gradient."""
    filters = [0, 1, 2]
    layer = "block3_conv1" if name == "objective_after_relu" else "block2_conv1"
    side = MUTATIONS[name].apply(torch_vgg)
    report = Report(gradient_checks(keras_vgg, side, layer, filters, initial_images(filters, 64, 0)))
    assert not report.passed, f"{name} went unnoticed: {report.summary()}"
    if name.startswith("border"):
        assert {c.group for c in report.failures()} == {"gradients", "objective"}


def test_border_bug_is_planted_only_while_the_torch_side_runs(torch_vgg):
    from filtviz_core import algorithm

    side = MUTATIONS["border_crop_1"].apply(torch_vgg)
    with side.planted():
        assert algorithm.interior(10, 10) == (slice(1, 9), slice(1, 9))
    assert algorithm.interior(10, 10) == (slice(2, 8), slice(2, 8))


def test_first_update_catches_a_learning_rate_one_percent_off(keras_vgg, torch_vgg):
    """lr x 1.01 changes nothing the forward or backward pass computes; the first ascent step is
    1% too long, which the first-update check (deterministic, fixed bound) sees."""
    x0 = init_for([0, 1], 48, 0)
    k = run_keras(keras_vgg, "block1_conv2", [0, 1], x0, steps=3)
    t = run_side(MUTATIONS["lr_x1.01"].apply(torch_vgg), "block1_conv2", [0, 1], x0, steps=3)
    report = Report(ascent_checks(k, t))
    assert "update/block1_conv2/norm_ratio_diff" in [c.name for c in report.failures()]
    assert report["update/block1_conv2/norm_ratio_diff"].value == pytest.approx(0.01, rel=1e-3)
    correct = Report(ascent_checks(k, run_torch(torch_vgg, "block1_conv2", [0, 1], x0, steps=3)))
    assert correct.passed, correct.summary()


def test_loss_history_parity_catches_a_perturbed_filter(keras_vgg, torch_vgg):
    """The ascent itself: 1e-3 on one block1_conv2 filter moves its loss curve beyond the block-1 bound."""
    mutant = copy.deepcopy(torch_vgg)
    w = mutant.features[TORCH_CONV_INDEX["block1_conv2"]].weight
    w.data[5] *= 1 + 1e-3
    x0 = init_for([5], 64, 0)
    k = run_keras(keras_vgg, "block1_conv2", [5], x0, steps=20)
    t = run_torch(mutant, "block1_conv2", [5], x0, steps=20)
    report = Report(ascent_checks(k, t))
    assert "losses/block1_conv2/5/max_rel_diff" in [c.name for c in report.failures()]
    assert np.all(np.isfinite(t.losses))
