"""The comparison core on its own: its metrics, checks and runners, and a second small CNN ported from
Keras to torch (the core knows nothing about VGG16)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from parity_tests import small_cnn
from parity_tests.checks import FloorRule, check_curves_against_floor, check_first_update
from parity_tests.compare import (
    Check,
    CurveBounds,
    Report,
    check_curves,
    compare,
    cosine,
    curve_relative_diff,
    pearson,
    relative_max_diff,
)
from parity_tests.metrics import curve_divergence, norm_ratio_diff


@pytest.fixture(scope="module")
def weights():
    return small_cnn.neutral_weights(seed=0)


@pytest.fixture(scope="module")
def inputs():
    return (
        np.random.default_rng(7).uniform(-1, 1, (4, small_cnn.INPUT_SIZE, small_cnn.INPUT_SIZE, 3)).astype(np.float32)
    )


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
            model.conv2.weight.copy_(
                torch.from_numpy(np.ascontiguousarray(weights["conv2/kernel"].transpose(3, 2, 1, 0)))
            )
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

    report = compare(
        small_cnn.keras_model(weights),
        small_cnn.torch_model(weights),
        {"conv1": "relu1"},
        inputs,
        keras_preprocess=scale,
        torch_preprocess=scale,
    )
    assert report.passed, report.summary()
    one_sided = compare(
        small_cnn.keras_model(weights),
        small_cnn.torch_model(weights),
        {"conv1": "relu1"},
        inputs,
        keras_preprocess=scale,
    )
    assert not one_sided.passed


def test_metrics():
    a = np.array([1.0, -2.0, 4.0])
    assert relative_max_diff(a, a + [0, 0, 0.004]) == pytest.approx(1e-3)
    assert relative_max_diff(a, a[:2]) == math.inf
    assert cosine(a, 3 * a) == pytest.approx(1.0) and cosine(a, -a) == pytest.approx(-1.0)
    assert pearson(a, 2 * a + 5) == pytest.approx(1.0)
    assert norm_ratio_diff(a, 1.01 * a) == pytest.approx(0.01)


def test_curve_metric_is_robust_where_the_loss_crosses_zero():
    """Differences are measured against the curve's own scale (its peak), never against the ~0 value
    at a zero crossing: the old per-step denominator max(|a_t|, 1% of the peak) gave 0.5 here."""
    curve = np.array([-100.0, -1e-6, 100.0])
    assert curve_relative_diff(curve, curve + [0, 0.5, 0]) == pytest.approx(0.5 / 100.0)
    assert curve_relative_diff(curve, curve * (1 + 1e-3)) == pytest.approx(1e-3)
    # The same absolute slip costs the same wherever it happens on the curve.
    rising = np.linspace(-50.0, 150.0, 101)
    at_zero, at_peak = rising.copy(), rising.copy()
    at_zero[25] += 0.3  # rising[25] == 0
    at_peak[-1] += 0.3
    assert (
        curve_relative_diff(rising, at_zero)
        == pytest.approx(curve_relative_diff(rising, at_peak))
        == pytest.approx(0.3 / 150.0)
    )
    # The running maximum: how far apart the curves have been by each step.
    div = curve_divergence(rising, at_zero)
    assert div[24] == 0 and div[25] == div[-1] == pytest.approx(0.002)
    assert curve_relative_diff(rising, rising[:50]) == math.inf


def test_floor_rule_arithmetic_and_explanation():
    rule = FloorRule(k=8.0, cap=0.1, min_floor=1e-6)
    assert rule.bound(1.1e-3) == pytest.approx(8.8e-3)
    assert rule.bound(1e-9) == pytest.approx(8e-6), "a floor below float32 resolution is raised to it"
    assert rule.bound(0.05) == 0.1, "the cap holds whatever the floor"
    assert rule.explain(1.1e-3) == "floor measured 0.0011, allowed 8x = 0.0088"
    assert "capped at 0.1" in rule.explain(0.05)
    assert "raised to the float32 minimum" in rule.explain(0.0)


def test_curves_against_floor_take_the_worst_rerun_and_spell_it_out():
    steps = np.arange(21.0)
    ref = np.stack([100 + 10 * steps, 50 + 5 * steps])  # peaks 300 and 150
    reruns = [ref + [[0.0] * 20 + [0.03], [0.0] * 21], ref + [[0.0] * 21, [0.0] * 20 + [0.165]]]
    # floors: 1e-4 (filter 0, rerun 1) and 1.1e-3 (filter 1, rerun 2): the layer's floor is 1.1e-3
    port = ref + [[0.0] * 20 + [0.66], [0.0] * 21]  # filter 0: 2.2e-3
    rule = FloorRule(k=8.0, cap=0.1)
    checks = check_curves_against_floor("blockX", [3, 4], ref, port, reruns, rule)
    assert [c.name for c in checks] == ["losses/blockX/3/divergence", "losses/blockX/4/divergence"]
    assert checks[0].bound == pytest.approx(8.8e-3) and checks[0].value == pytest.approx(2.2e-3)
    assert checks[0].passed and checks[1].passed and checks[1].value == 0
    assert checks[0].note == "floor measured 0.0011, allowed 8x = 0.0088, got 0.0022"
    bad = check_curves_against_floor("blockX", [3, 4], ref, ref * 1.05, reruns, rule)
    assert [c.passed for c in bad] == [False, False]
    assert "got 0.05" in bad[0].describe()


def test_first_update_catches_a_step_one_percent_too_long():
    rng = np.random.default_rng(0)
    x0 = rng.uniform(118, 138, (2, 8, 8, 3)).astype(np.float32)
    g = rng.standard_normal(x0.shape)
    step = g / np.sqrt(np.mean(g**2, axis=(1, 2, 3), keepdims=True))
    ok = Report(check_first_update("l", x0, x0 + step, x0 + step * (1 + 1e-7)))
    assert ok.passed, ok.summary()
    long = Report(check_first_update("l", x0, x0 + step, x0 + np.stack([step[0], 1.01 * step[1]])))
    assert [c.name for c in long.failures()] == ["update/l/norm_ratio_diff"]
    assert long["update/l/norm_ratio_diff"].value == pytest.approx(0.01, rel=1e-4)
    turned = Report(check_first_update("l", x0, x0 + step, x0 + step[:, ::-1]))
    assert "update/l/min_cosine" in [c.name for c in turned.failures()]


def test_checks_and_report():
    assert Check("x", 1e-6, 1e-5).passed and not Check("x", 2e-5, 1e-5).passed
    assert not Check("x", math.nan, 1e-5).passed, "NaN must never pass"
    assert Check("c", 0.99999, 0.9999, ">=").passed and not Check("c", 0.999, 0.9999, ">=").passed
    assert Check("d", 0.0, 0.0, "==").passed and not Check("d", 1.0, 0.0, "==").passed
    assert not Report().passed, "an empty report proves nothing"
    curves = check_curves(
        "f",
        np.arange(101.0),
        np.arange(101.0) * 1.01,
        CurveBounds(max_rel=1e-3, min_pearson=0.999, final_rel=1e-3, gain_rel=1e-3),
        gain_steps=(10, 100),
    )
    report = Report(curves)
    assert [c.name.rsplit("/", 1)[1] for c in report.failures()] == [
        "max_rel_diff",
        "final_rel_diff",
        "gain_10_100_rel_diff",
    ]
    assert report["losses/f/pearson"].passed


def test_compare_runs_the_port_in_inference_mode_and_leaves_its_mode(weights, inputs):
    """A freshly built port is in training mode: BatchNorm would normalise with batch statistics (and
    update its running ones) and Dropout would drop. compare() runs it in eval mode, changes none of
    its buffers, and gives every module its own mode back."""
    import keras
    from torch import nn

    rng = np.random.default_rng(3)
    k_in = keras.Input((8, 8, 3))
    k_out = keras.layers.Dropout(0.5, name="drop")(
        keras.layers.BatchNormalization(name="bn")(keras.layers.Conv2D(4, 3, padding="same", name="conv")(k_in))
    )
    k_model = keras.Model(k_in, k_out)
    kernel, bias = rng.standard_normal((3, 3, 3, 4)).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    gamma, beta = rng.uniform(0.5, 2, 4).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    mean, var = rng.standard_normal(4).astype(np.float32), rng.uniform(0.5, 2, 4).astype(np.float32)
    k_model.get_layer("conv").set_weights([kernel, bias])
    k_model.get_layer("bn").set_weights([gamma, beta, mean, var])
    t_model = nn.Sequential()
    t_model.add_module("conv", nn.Conv2d(3, 4, 3, padding=1))
    t_model.add_module("bn", nn.BatchNorm2d(4, eps=1e-3))
    t_model.add_module("drop", nn.Dropout(0.5))
    with torch.no_grad():
        t_model.conv.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()))
        t_model.conv.bias.copy_(torch.from_numpy(bias))
        t_model.bn.weight.copy_(torch.from_numpy(gamma))
        t_model.bn.bias.copy_(torch.from_numpy(beta))
        t_model.bn.running_mean.copy_(torch.from_numpy(mean))
        t_model.bn.running_var.copy_(torch.from_numpy(var))
    t_model.train()
    t_model.conv.eval()  # a mixed state must come back exactly as it was
    before = {k: v.clone() for k, v in t_model.state_dict().items()}
    x = rng.uniform(-1, 1, (4, 8, 8, 3)).astype(np.float32)
    report = compare(k_model, t_model, {"bn": "bn", "drop": "drop"}, x)
    assert report.passed, report.summary()
    assert [m.training for m in t_model.modules()] == [True, False, True, True]
    for key, value in t_model.state_dict().items():
        assert torch.equal(value, before[key]), f"{key} changed by the comparison"
    # Without inference mode the same port would not agree (the bug the runner prevents).
    with torch.no_grad():
        train_out = t_model.bn(t_model.conv(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())))
    keras_bn = np.asarray(keras.Model(k_in, k_model.get_layer("bn").output)(x, training=False))
    assert relative_max_diff(keras_bn, train_out.numpy().transpose(0, 2, 3, 1)) > 1e-2
