"""Objectives in Lucent's vocabulary (SPEC.md §16) agree between tf_reference and torch_filtviz
(parity_tests/objective_parity.py: what is compared, and why each bound is what it is):

* values and input gradients of every kind (channel, neuron at the centre and at x/y, direction,
  diversity, batch=i, channel - w * diversity) on block1_conv2, block3_conv3 and block5_conv3 from
  identical pictures: values within 1e-5 of the batch's largest |value|, TF vs torch and each against
  the float64 definition; gradient cosine per element >= 0.99998 — pre_relu, post_relu once, and a
  non-square picture (where a neuron's row and column cannot be confused);
* loss histories of visualize_filters(unit="neuron"), visualize_filters(diversity=3) and
  render(channel - w * diversity, batch=3) from the same seeded starts, with the pixel method's block-1
  bounds, its noise-floor rule beyond block 1, and the fourier method's bounds;
* two planted torch bugs (a neuron's row and column swapped, a diversity term that keeps j == i)
  make those checks fail.
"""

from __future__ import annotations

import numpy as np
import pytest

from filtviz_core import objectives as core
from filtviz_core.vgg16 import CONV_NAMES
from parity_tests.checks import Report
from parity_tests.objective_parity import (
    BATCH,
    CURVE_SIZE,
    LAYERS,
    PLANTED,
    STEPS,
    WIDE,
    diversity_objective,
    filters_pair,
    keras_render,
    keras_values,
    objective_cases,
    photo_pictures,
    render_pair,
    seeded_pictures,
    torch_filters,
    torch_render,
    torch_values,
    value_checks,
)
from parity_tests.vgg_parity import ascent_checks

KINDS = {"channel", "neuron", "neuron_xy", "direction", "diversity", "batch", "channel_minus_diversity"}


def kind_of(check_name: str) -> str:
    """The objective kind in a check's name: ``values/<label>/<layer>/<kind>/<activation>/...``."""
    return check_name.split("/")[3]


@pytest.fixture(scope="module")
def seeded():
    return seeded_pictures()


@pytest.fixture(scope="module")
def wide():
    return photo_pictures(*WIDE)


# --- values and input gradients -------------------------------------------------------------------


@pytest.mark.parametrize("layer", LAYERS)
def test_values_and_gradients_agree(layer, keras_vgg, torch_vgg, seeded):
    cases = objective_cases(layer)
    assert set(cases) == KINDS
    report = Report(value_checks(keras_vgg, torch_vgg, seeded, cases, label="seeded"))
    assert report.passed, report.summary()
    assert len(report.checks) == 4 * len(KINDS)  # three value pairs and the gradients per kind


def test_values_and_gradients_agree_on_the_photo_post_relu(keras_vgg, torch_vgg):
    """post_relu (the layer's output, where units may be off): the sample photo, mirrored, and a grey start."""
    x = photo_pictures()
    cases = objective_cases("block3_conv3")
    report = Report(value_checks(keras_vgg, torch_vgg, x, cases, activation="post_relu", label="photo"))
    assert report.passed, report.summary()
    assert np.any(torch_values(torch_vgg, cases["channel"], x, "post_relu")[0] > 0), "an active channel is needed"


def test_values_and_gradients_agree_on_a_non_square_photo(keras_vgg, torch_vgg, wide):
    """48x64: a neuron's row and column, and the map's height and width, cannot be confused."""
    report = Report(value_checks(keras_vgg, torch_vgg, wide, objective_cases("block3_conv3", *WIDE), label="48x64"))
    assert report.passed, report.summary()


def test_direction_of_a_one_hot_vector_is_the_channel(keras_vgg, torch_vgg, seeded):
    """The definition's identity direction(L, one_hot(c)) = channel(L, c), in both frameworks."""
    layer, c = "block3_conv3", 11
    one_hot = np.eye(256)[c]
    for values in (lambda o: keras_values(keras_vgg, o, seeded)[0], lambda o: torch_values(torch_vgg, o, seeded)[0]):
        along, chan = values(core.direction(layer, one_hot)), values(core.channel(layer, c))
        assert np.max(np.abs(along - chan)) <= 1e-5 * np.max(np.abs(chan))


@pytest.mark.slow
@pytest.mark.parametrize("layer", CONV_NAMES)
def test_values_and_gradients_agree_everywhere(layer, keras_vgg, torch_vgg, seeded):
    for label, x in (("seeded", seeded), ("photo", photo_pictures()), ("48x64", photo_pictures(*WIDE))):
        cases = objective_cases(layer, *x.shape[1:3])
        report = Report(
            value_checks(keras_vgg, torch_vgg, x, cases, label=label)
            + value_checks(keras_vgg, torch_vgg, x, cases, activation="post_relu", label=label)
        )
        assert report.passed, report.summary()


# --- loss histories ---------------------------------------------------------------------------------


@pytest.mark.parametrize("layer,filters", [("block1_conv2", [0, 5]), ("block3_conv1", [0, 7])])
def test_neuron_loss_histories_agree(layer, filters, keras_vgg, torch_vgg):
    pair = filters_pair(keras_vgg, torch_vgg, layer, filters, steps=STEPS, size=CURVE_SIZE)
    assert pair.ref.losses.shape == pair.other.losses.shape == (len(filters), STEPS + 1)
    assert np.all(pair.ref.losses[:, -1] > pair.ref.losses[:, 0]), "the ascent must raise the objective"
    report = Report(pair.checks())
    assert report.passed, report.summary()
    assert bool(pair.again) == (layer != "block1_conv2")


def test_diversity_groups_of_visualize_filters_agree(keras_vgg, torch_vgg):
    """visualize_filters(diversity=3): one filter's three coupled pictures, from the keys (f, 2, k)."""
    pair = filters_pair(
        keras_vgg, torch_vgg, "block1_conv2", [3], steps=STEPS, size=CURVE_SIZE, unit="channel", diversity=BATCH
    )
    assert pair.ref.filters == pair.other.filters == [3] * BATCH
    report = Report(pair.checks())
    assert report.passed, report.summary()


@pytest.mark.parametrize("layer", ["block1_conv2", "block3_conv1"])
def test_render_loss_histories_agree(layer, keras_vgg, torch_vgg):
    pair = render_pair(keras_vgg, torch_vgg, diversity_objective(layer), steps=STEPS, size=CURVE_SIZE)
    assert pair.ref.losses.shape == pair.other.losses.shape == (BATCH, STEPS + 1)
    assert np.all(pair.ref.losses[:, -1] > pair.ref.losses[:, 0]), "the ascent must raise the objective"
    report = Report(pair.checks())
    assert report.passed, report.summary()


def test_render_fourier_loss_histories_agree(keras_vgg, torch_vgg):
    pair = render_pair(
        keras_vgg, torch_vgg, diversity_objective("block1_conv2"), steps=STEPS, size=CURVE_SIZE, method="fourier"
    )
    report = Report(pair.checks())
    assert report.passed, report.summary()
    assert any(c.name.startswith("losses/fourier/block1_conv2/") for c in report.checks)


@pytest.mark.slow
@pytest.mark.parametrize("layer", ["block2_conv1", "block4_conv1", "block5_conv1"])
def test_loss_histories_agree_deeper(layer, keras_vgg, torch_vgg):
    pairs = [
        filters_pair(keras_vgg, torch_vgg, layer, [0, 1], steps=50),
        render_pair(keras_vgg, torch_vgg, diversity_objective(layer), steps=50),
        render_pair(keras_vgg, torch_vgg, diversity_objective(layer), steps=60, size=48, method="fourier"),
    ]
    for pair in pairs:
        report = Report(pair.checks())
        assert report.passed, f"{pair.name}: {report.summary()}"


# --- planted bugs --------------------------------------------------------------------------------


def test_neuron_with_rows_and_columns_swapped_is_caught(keras_vgg, torch_vgg, seeded, wide):
    """(W // 2, H // 2) for (row, column): invisible on square maps, caught on a 48x64 picture by the
    value and the gradient of every term with a default (centre) neuron, and only those."""
    layer, bug = "block3_conv3", "neuron_rows_cols_swapped"
    cases = {k: v for k, v in objective_cases(layer, *WIDE).items() if k in ("neuron", "neuron_xy", "batch")}
    square = Report(value_checks(keras_vgg, torch_vgg, seeded, {"neuron": objective_cases(layer)["neuron"]}, bug=bug))
    assert square.passed, "on a square map the swap changes nothing: " + square.summary()
    report = Report(value_checks(keras_vgg, torch_vgg, wide, cases, label="48x64", bug=bug))
    failed = report.failures()
    assert {kind_of(c.name) for c in failed} == {"neuron", "batch"}  # neuron_xy names its own position
    assert f"gradients/48x64/{layer}/neuron/pre_relu/min_cosine" in [c.name for c in failed]
    assert not any(c.name.endswith("tf_vs_numpy") for c in failed), "the reference side is untouched"


def test_diversity_that_keeps_its_own_term_is_caught(keras_vgg, torch_vgg, wide):
    """sum over j of <G_i, G_j> including j == i adds 1/B to every element: the values catch it (the
    gradients cannot: the own term of unit-norm Grams is constant)."""
    layer = "block3_conv3"
    cases = {
        k: v
        for k, v in objective_cases(layer, *WIDE).items()
        if k in ("channel", "diversity", "channel_minus_diversity")
    }
    report = Report(value_checks(keras_vgg, torch_vgg, wide, cases, label="48x64", bug="diversity_keeps_self"))
    failed = report.failures()
    assert {kind_of(c.name) for c in failed} == {"diversity", "channel_minus_diversity"}
    assert {c.group for c in failed} == {"values"}
    assert report[f"values/48x64/{layer}/diversity/pre_relu/tf_vs_torch"].value > 0.1


def test_planted_bugs_show_in_the_loss_histories(keras_vgg, torch_vgg):
    """The same two bugs through the torch ascent itself: render's losses (diversity) and
    visualize_filters(unit="neuron") from a 48x64 start (the first update and the losses)."""
    objective = diversity_objective("block1_conv2")
    ref = keras_render(keras_vgg, objective, steps=10, size=48)
    with PLANTED["diversity_keeps_self"]():
        bad = torch_render(torch_vgg, objective, steps=10, size=48)
    report = Report(ascent_checks(ref, bad))
    assert "losses/block1_conv2/0/max_rel_diff" in [c.name for c in report.failures()]

    init = photo_pictures(*WIDE)[:2]
    with PLANTED["neuron_rows_cols_swapped"]():
        bad = torch_filters(torch_vgg, "block1_conv2", [0, 5], steps=5, init=init)
    pair = filters_pair(keras_vgg, torch_vgg, "block1_conv2", [0, 5], steps=5, init=init)
    correct = Report(pair.checks())
    assert correct.passed, correct.summary()
    names = [c.name for c in Report(ascent_checks(pair.ref, bad)).failures()]
    assert "update/block1_conv2/min_cosine" in names and "losses/block1_conv2/0/max_rel_diff" in names
