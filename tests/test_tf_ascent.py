"""tf_reference.ascent: the gradient ascent of SPEC.md, checked section by section."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from filtviz_core import algorithm
from filtviz_core.errors import FiltvizError
from filtviz_core.runrecord import FIELDS
from tf_reference import (
    deprocess,
    feature_maps,
    load_vgg16,
    make_step_fn,
    plot_filter_grid,
    plot_iterations,
    run_record,
    visualize_filter,
    visualize_filters,
)

GREY32 = np.full((32, 32, 3), 128.0, np.float32)


@pytest.fixture(scope="module")
def model(weights_file):
    return load_vgg16()


def _rms(a: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(a.astype(np.float64)))))


def test_result_shapes_history_and_snapshots(model):
    r = visualize_filter(model, "block1_conv2", 5, steps=12, size=32)
    assert r.layer == "block1_conv2" and r.filter_index == 5 and not r.dead
    assert r.raw.shape == (32, 32, 3) and r.raw.dtype == np.float32
    assert r.image.dtype == np.uint8 and np.array_equal(r.image, deprocess(r.raw))
    assert r.losses.shape == (13,)  # §7: steps + 1
    assert sorted(r.snapshots) == [10, 12]  # §8: default (10, 100) within 0..12, plus the last step
    np.testing.assert_array_equal(r.snapshots[12], r.raw)
    assert r.params["steps"] == 12 and r.params["size"] == 32 and r.params["init"] == "seeded"
    assert r.seconds > 0


@pytest.mark.parametrize("layer, f", [("block1_conv2", 0), ("block1_conv2", 17), ("block2_conv1", 3)])
def test_loss_rises_step_by_step(model, layer, f):
    r = visualize_filter(model, layer, f, steps=10, size=32)
    assert np.all(np.diff(r.losses) > 0), r.losses
    assert r.losses[-1] > r.losses[0] + 5.0


def test_seeded_start_and_rms_step(model):
    """§3: x0 = initial_image(f, size, seed); §6: every step moves the image by lr in RMS."""
    r = visualize_filter(model, "block2_conv1", 7, steps=2, size=32, seed=3, lr=0.5, snapshots=(0, 1, 2))
    np.testing.assert_array_equal(r.snapshots[0], algorithm.initial_image(7, 32, 3))
    assert _rms(r.snapshots[1] - r.snapshots[0]) == pytest.approx(0.5, rel=1e-4)
    assert _rms(r.snapshots[2] - r.snapshots[1]) == pytest.approx(0.5, rel=1e-4)


def test_loss_is_the_interior_mean_of_the_activation(model):
    """§5: post_relu loss = mean of the Keras layer output over the interior (2 px border dropped)."""
    r = visualize_filter(model, "block2_conv1", 11, steps=0, size=40, objective="post_relu")
    fmap = feature_maps(model, algorithm.initial_image(11, 40, 0), ["block2_conv1"])["block2_conv1"][0]
    assert fmap.shape[:2] == (20, 20)
    assert r.losses[0] == pytest.approx(float(fmap[2:18, 2:18, 11].mean()), rel=1e-5)
    assert r.losses[0] != pytest.approx(float(fmap[:, :, 11].mean()), rel=1e-3)


def test_pre_relu_loss_is_the_linear_conv_output(model):
    """§5: pre_relu loss = mean of conv(h, K) + b, which can be negative (no ReLU)."""
    x0 = algorithm.initial_image(0, 32, 0)
    kernel, bias = model.get_layer("block1_conv1").get_weights()
    m = x0.astype(np.float64)[..., ::-1] - np.array([103.939, 116.779, 123.68])
    padded = np.pad(m, ((1, 1), (1, 1), (0, 0)))
    conv = (
        sum(padded[i : i + 32, j : j + 32] @ kernel[i, j].astype(np.float64) for i in range(3) for j in range(3)) + bias
    )
    expected = conv[2:30, 2:30].mean(axis=(0, 1))
    negative = int(np.argmin(expected))
    assert expected[negative] < 0
    for f in (negative, int(np.argmax(expected))):
        r = visualize_filter(model, "block1_conv1", f, steps=0, init=x0)
        assert r.losses[0] == pytest.approx(expected[f], rel=1e-4, abs=1e-3)


def test_deterministic_and_eager_matches_compiled(model):
    a = visualize_filter(model, "block2_conv1", 2, steps=5, size=32, seed=1)
    b = visualize_filter(model, "block2_conv1", 2, steps=5, size=32, seed=1)
    np.testing.assert_array_equal(a.raw, b.raw)
    np.testing.assert_array_equal(a.losses, b.losses)
    eager = visualize_filter(model, "block2_conv1", 2, steps=5, size=32, seed=1, compiled=False)
    np.testing.assert_allclose(eager.raw, a.raw, rtol=0, atol=1e-3)
    np.testing.assert_allclose(eager.losses, a.losses, rtol=1e-5)
    other = visualize_filter(model, "block2_conv1", 2, steps=5, size=32, seed=2)
    assert not np.array_equal(other.raw, a.raw)


def test_init_overrides_seed_and_size(model):
    init = np.random.default_rng(5).uniform(60, 200, (40, 48, 3)).astype(np.float32)
    a = visualize_filter(model, "block1_conv2", 3, steps=3, seed=0, size=128, init=init, snapshots=(0, 3))
    b = visualize_filter(model, "block1_conv2", 3, steps=3, seed=9, size=64, init=init, snapshots=(0, 3))
    np.testing.assert_array_equal(a.snapshots[0], init)
    np.testing.assert_array_equal(a.raw, b.raw)
    assert a.raw.shape == (40, 48, 3) and a.params["init"] == "given" and a.params["size"] == [40, 48]


def test_steps_zero_is_the_start(model):
    r = visualize_filter(model, "block1_conv2", 1, steps=0, size=32)
    assert r.losses.shape == (1,) and sorted(r.snapshots) == [0]
    np.testing.assert_array_equal(r.raw, algorithm.initial_image(1, 32, 0))


def test_dead_filter_is_frozen_and_reported(model):
    """§9: on a flat grey image block1_conv2 filter 8 is zero after its ReLU in the whole interior."""
    grey_map = feature_maps(model, GREY32, ["block1_conv2"])["block1_conv2"][0]
    assert np.all(grey_map[2:30, 2:30, 8] == 0)
    r = visualize_filter(model, "block1_conv2", 8, steps=6, init=GREY32, objective="post_relu", snapshots=(0, 3, 6))
    assert r.dead
    np.testing.assert_array_equal(r.losses, np.zeros(7))
    np.testing.assert_array_equal(r.raw, GREY32)
    assert sorted(r.snapshots) == [0, 3, 6] and all(np.array_equal(s, GREY32) for s in r.snapshots.values())
    alive = visualize_filter(model, "block1_conv2", 8, steps=6, init=GREY32, objective="pre_relu")
    assert not alive.dead and np.all(np.diff(alive.losses) > 0)


def test_seeded_deep_filter_dead_with_post_relu_alive_with_pre_relu(model):
    """DESIGN's reason for pre_relu: the seeded grey start leaves block5_conv3 #0 dead after its ReLU."""
    dead = visualize_filter(model, "block5_conv3", 0, steps=3, size=32, objective="post_relu")
    assert dead.dead and np.all(dead.losses == 0)
    alive = visualize_filter(model, "block5_conv3", 0, steps=3, size=32, objective="pre_relu")
    assert not alive.dead and alive.losses[-1] > alive.losses[0]


def test_step_fn_reports_zero_gradient(model):
    import tensorflow as tf

    step = make_step_fn(model, "block1_conv2", "post_relu", compiled=False)
    loss, x_next, zero = step(tf.constant(GREY32[None]), tf.constant(8), tf.constant(1.0))
    assert bool(zero) and float(loss) == 0.0
    np.testing.assert_array_equal(np.asarray(x_next)[0], GREY32)


def test_clip_keeps_pixels_in_range(model):
    init = np.full((32, 32, 3), 254.5, np.float32)
    r = visualize_filter(model, "block1_conv2", 0, steps=3, init=init, lr=20.0, clip=True)
    assert r.raw.min() >= 0.0 and r.raw.max() <= 255.0


def test_errors_are_one_line_and_name_what_is_valid(model):
    with pytest.raises(FiltvizError, match="block1_conv2 has 64 filters"):
        visualize_filter(model, "block1_conv2", 64, steps=1, size=32)
    with pytest.raises(FiltvizError, match="out of range"):
        visualize_filter(model, "block1_conv2", -1, steps=1, size=32)
    with pytest.raises(ValueError, match="unknown conv layer 'block1_pool'; valid: block1_conv1"):
        visualize_filter(model, "block1_pool", 0, steps=1, size=32)
    with pytest.raises(FiltvizError, match="too small for block3_conv1: it needs at least 4 px"):
        visualize_filter(model, "block3_conv1", 0, steps=1, size=3)
    with pytest.raises(FiltvizError, match="too small"):
        visualize_filter(model, "block5_conv1", 0, steps=1, init=np.zeros((15, 40, 3), np.float32))
    with pytest.raises(FiltvizError, match="unknown objective"):
        visualize_filter(model, "block1_conv2", 0, steps=1, size=32, objective="relu")
    with pytest.raises(FiltvizError, match=r"outside 0..5"):
        visualize_filter(model, "block1_conv2", 0, steps=5, size=32, snapshots=(3, 10))
    with pytest.raises(FiltvizError, match="steps"):
        visualize_filter(model, "block1_conv2", 0, steps=-1, size=32)
    with pytest.raises(FiltvizError, match="init"):
        visualize_filters(model, "block1_conv2", "0-2", steps=1, init=np.zeros((2, 32, 32, 3), np.float32))


def test_filters_are_independent_and_recorded(model):
    results = visualize_filters(model, "block1_conv2", "4,9", steps=3, size=32, snapshots=(0, 3))
    assert [r.filter_index for r in results] == [4, 9]
    alone = visualize_filter(model, "block1_conv2", 9, steps=3, size=32, snapshots=(0, 3))
    np.testing.assert_array_equal(results[1].raw, alone.raw)
    inits = np.stack([GREY32, algorithm.initial_image(9, 32, 0)])
    given = visualize_filters(model, "block1_conv2", [8, 9], steps=3, init=inits, objective="post_relu")
    assert [r.dead for r in given] == [True, False]

    record = run_record(model, results)
    assert set(FIELDS) <= set(record)
    assert record["framework"] == "tensorflow" and "keras" in record["framework_version"]
    assert record["filters"] == [4, 9] and record["layer"] == "block1_conv2"
    assert np.asarray(record["losses"]).shape == (2, 4) and record["dead"] == [False, False]
    assert record["weights"]["sha256"] == model.filtviz_weights["sha256"]
    assert record["params"]["snapshots"] == [0, 3] and record["params"]["objective"] == "pre_relu"


def test_plots_return_figures(model):
    results = visualize_filters(model, "block1_conv2", [0, 1, 2], steps=2, size=32, snapshots=(1, 2))
    grid = plot_filter_grid(results, columns=2)
    assert isinstance(grid, Figure) and len(grid.axes) == 4
    iterations = plot_iterations(results)
    assert isinstance(iterations, Figure) and len(iterations.axes) == 3 * 3  # 2 snapshots + loss curve per filter
