"""tf_reference.objectives and render (SPEC.md §16): every term against numpy, the algebra, one-line
errors, renders of a batch, diversity groups and the neuron unit of visualize_filters."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from filtviz_core import algorithm
from filtviz_core import fourier as core_fourier
from filtviz_core import objectives as core
from filtviz_core.errors import FiltvizError
from filtviz_core.objectives import DIVERSITY_WEIGHT, Objective, Term, gram_similarity
from tf_reference import feature_maps, load_vgg16, render, run_record, visualize_filter, visualize_filters
from tf_reference import objectives as obj

RNG = np.random.default_rng(7)
MAPS = RNG.normal(size=(4, 9, 11, 6)).astype(np.float32)  # (B, H, W, C): interior rows 2-6, cols 2-8
UNITS = RNG.normal(size=(4, 5)).astype(np.float32)  # (B, C)
OTHER = RNG.normal(size=(4, 5, 5, 3)).astype(np.float32)  # a second layer, another shape


def _values(objective, acts):
    return np.asarray(obj.evaluate(objective, acts), np.float64)


def _interior_mean(a, c):
    return a[:, 2:-2, 2:-2, c].astype(np.float64).mean(axis=(1, 2))


@pytest.fixture(scope="module")
def model(weights_file):
    return load_vgg16(weights_file.path)


def _corr(results):
    x = np.stack([r.raw.astype(np.float64).ravel() for r in results])
    c = np.corrcoef(x - x.mean(axis=1, keepdims=True))
    n = len(results)
    return (c.sum() - n) / (n * (n - 1))


# --- terms on random tensors, against numpy --------------------------------------------------------


def test_same_constructors_as_filtviz_core():
    for name in ("channel", "neuron", "direction", "diversity", "sum", "Objective", "per_filter"):
        assert getattr(obj, name) is getattr(core, name)
    import tf_reference

    assert tf_reference.objectives is obj


def test_channel_term():
    np.testing.assert_allclose(_values(obj.channel("a", 2), {"a": MAPS}), _interior_mean(MAPS, 2), rtol=1e-5)
    per = core.per_filter("a", [1, 4, 0, 4])  # one channel per element
    np.testing.assert_allclose(
        _values(per, {"a": MAPS}), [_interior_mean(MAPS, c)[i] for i, c in enumerate([1, 4, 0, 4])], rtol=1e-5
    )
    small = MAPS[:, :4, :4]  # a 4x4 map has no border to drop (§5)
    np.testing.assert_allclose(_values(obj.channel("a", 3), {"a": small}), small[..., 3].mean(axis=(1, 2)), rtol=1e-5)
    np.testing.assert_array_equal(_values(obj.channel("u", 3), {"u": UNITS}), UNITS[:, 3])


def test_neuron_term():
    np.testing.assert_array_equal(_values(obj.neuron("a", 4), {"a": MAPS}), MAPS[:, 9 // 2, 11 // 2, 4])
    np.testing.assert_array_equal(_values(obj.neuron("a", 4, x=9, y=1), {"a": MAPS}), MAPS[:, 1, 9, 4])
    per = core.per_filter("a", [0, 1, 2, 3], unit="neuron")
    np.testing.assert_array_equal(_values(per, {"a": MAPS}), [MAPS[i, 4, 5, i] for i in range(4)])
    np.testing.assert_array_equal(_values(obj.neuron("u", 1), {"u": UNITS}), UNITS[:, 1])


def test_direction_term():
    v = RNG.normal(size=6)
    unit = v / np.linalg.norm(v)
    expected = (MAPS[:, 2:-2, 2:-2, :].astype(np.float64) @ unit).mean(axis=(1, 2))
    np.testing.assert_allclose(_values(obj.direction("a", v), {"a": MAPS}), expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(
        _values(obj.direction("a", 3 * np.eye(6)[2]), {"a": MAPS}), _interior_mean(MAPS, 2), rtol=1e-5
    )  # a one-hot direction is the channel
    w = RNG.normal(size=5)
    np.testing.assert_allclose(
        _values(obj.direction("u", w), {"u": UNITS}), UNITS @ (w / np.linalg.norm(w)), rtol=1e-5, atol=1e-6
    )


def test_diversity_term_is_lucids_gram_cosine():
    flat = MAPS.reshape(4, -1, 6)
    np.testing.assert_allclose(_values(obj.diversity("a"), {"a": MAPS}), gram_similarity(flat), rtol=1e-5)
    grouped = Objective(((1.0, Term("diversity", "a", group=2)),))
    np.testing.assert_allclose(_values(grouped, {"a": MAPS}), gram_similarity(flat, group=2), rtol=1e-5)
    np.testing.assert_allclose(_values(obj.diversity("u"), {"u": UNITS}), gram_similarity(UNITS[:, None, :]), rtol=1e-5)
    same = np.repeat(MAPS[:1], 4, axis=0)  # four equal elements: each has (B - 1) / B
    np.testing.assert_allclose(_values(obj.diversity("a"), {"a": same}), [0.75] * 4, rtol=1e-5)
    # per_filter's diversity group: channel minus w times the penalty within groups of K
    per = core.per_filter("a", [3, 3, 5, 5], diversity_group=2, diversity_weight=10.0)
    np.testing.assert_allclose(
        _values(per, {"a": MAPS}),
        [_interior_mean(MAPS, c)[i] for i, c in enumerate([3, 3, 5, 5])] - 10.0 * gram_similarity(flat, group=2),
        rtol=1e-5,
        atol=1e-5,
    )


def test_batch_restriction_weights_and_sums():
    only = obj.channel("a", 2, batch=1)
    np.testing.assert_allclose(_values(only, {"a": MAPS}), [0, _interior_mean(MAPS, 2)[1], 0, 0], rtol=1e-5)
    v = np.array([1.0, -2.0, 0.5])
    total = 2 * obj.channel("a", 0) - obj.neuron("b", 1, batch=3) / 4 + sum([obj.direction("b", v), obj.diversity("a")])
    expected = (
        2 * _interior_mean(MAPS, 0)
        - 0.25 * np.where(np.arange(4) == 3, OTHER[:, 2, 2, 1], 0)
        + OTHER[:, 2, 2].astype(np.float64) @ (v / np.linalg.norm(v))  # 5x5: the interior is (2, 2)
        + gram_similarity(MAPS.reshape(4, -1, 6))
    )
    np.testing.assert_allclose(_values(total, {"a": MAPS, "b": OTHER}), expected, rtol=1e-5, atol=1e-5)
    assert total.layers() == ["a", "b"]


def test_algebra_and_words():
    o = obj.channel("block4_conv3", 12) - 100 * obj.diversity("block4_conv3")
    assert str(o) == "channel(block4_conv3, 12) - 100 * diversity(block4_conv3)"
    assert str(obj.sum([obj.channel("a", 1), obj.neuron("a", 2, x=3, y=4)])) == "channel(a, 1) + neuron(a, 2, x=3, y=4)"
    assert str(-obj.channel("a", 1) / 2) == "-0.5 * channel(a, 1)"
    assert sum([obj.channel("a", 1), obj.channel("a", 2)]).terms == (obj.channel("a", 1) + obj.channel("a", 2)).terms
    record = o.as_record()
    assert record["text"] == str(o) and [t["weight"] for t in record["terms"]] == [1.0, -100.0]


@pytest.mark.parametrize(
    "objective, acts, message",
    [
        (obj.channel("a", 6), {"a": MAPS}, "channel 6 is out of range: a has 6 channels"),
        (obj.neuron("a", 0, x=11), {"a": MAPS}, "x=11 lies outside the map's 11 columns"),
        (obj.neuron("a", 0, y=9), {"a": MAPS}, "y=9 lies outside the map's 9 rows"),
        (obj.direction("a", [1.0, 2.0]), {"a": MAPS}, "the vector has 2 entries; a has 6 channels"),
        (obj.channel("a", 0, batch=4), {"a": MAPS}, "batch=4 is outside the batch of 4"),
        (Objective(((1.0, Term("diversity", "a", group=3)),)), {"a": MAPS}, "is not made of groups of 3"),
        (obj.channel("b", 0), {"a": MAPS}, "reads b, which was not captured"),
        (obj.channel("a", 0) + obj.channel("b", 0), {"a": MAPS, "b": OTHER[:2]}, "different batch sizes"),
    ],
)
def test_errors_are_one_line(objective, acts, message):
    with pytest.raises(FiltvizError, match=message) as err:
        obj.evaluate(objective, acts)
    assert "\n" not in str(err.value)


def test_objective_values_capture_several_layers_in_one_pass(model):
    images = algorithm.initial_images([0, 1], 32, 0)
    one = obj.objective_values(model, obj.channel("block1_conv1", 3), images)
    two = obj.objective_values(model, obj.channel("block2_conv1", 7), images)
    both = obj.objective_values(model, obj.channel("block1_conv1", 3) + obj.channel("block2_conv1", 7), images)
    np.testing.assert_allclose(both, np.asarray(one) + np.asarray(two), rtol=1e-6)
    post = obj.objective_values(
        model, obj.neuron("block2_conv1", 7) + obj.channel("block1_pool", 2), images, activation="post_relu"
    )
    maps = feature_maps(model, images, ["block2_conv1", "block1_pool"])
    expected = maps["block2_conv1"][:, 8, 8, 7] + maps["block1_pool"][:, 2:-2, 2:-2, 2].mean(axis=(1, 2))
    np.testing.assert_allclose(post, expected, rtol=1e-5)


# --- render ----------------------------------------------------------------------------------------


def test_render_first_losses_are_the_objective_at_the_seeded_start(model):
    o = obj.channel("block2_conv1", 3) - 10 * obj.diversity("block2_conv1")
    results = render(model, o, batch=3, steps=2, size=32, activation="post_relu", snapshots=[0, 2])
    assert [r.filter_index for r in results] == [0, 1, 2] and {r.layer for r in results} == {"block2_conv1"}
    start = algorithm.initial_images(range(3), 32, 0)
    for i, r in enumerate(results):
        np.testing.assert_array_equal(r.snapshots[0], start[i])
        assert r.losses.shape == (3,) and r.losses[-1] > r.losses[0] and not r.dead
    fmap = feature_maps(model, start, ["block2_conv1"])["block2_conv1"]
    expected = _interior_mean(fmap, 3) - 10 * gram_similarity(fmap.reshape(3, -1, fmap.shape[-1]))
    np.testing.assert_allclose([r.losses[0] for r in results], expected, rtol=1e-4)
    assert results[0].params["objective"] == str(o) and results[0].params["activation"] == "post_relu"
    assert results[0].params["batch"] == 3 and results[0].objective is o
    record = run_record(model, results)
    assert record["objective"] == o.as_record() and record["filters"] == [0, 1, 2]
    assert record["params"]["objective"] == "channel(block2_conv1, 3) - 10 * diversity(block2_conv1)"


def test_render_fourier_starts_from_the_spectra_of_keys_0_to_n(model):
    results = render(
        model, obj.channel("block1_conv2", 1), batch=2, method="fourier", steps=2, size=32, snapshots=[0, 2]
    )
    start = core_fourier.spectrum_to_image(core_fourier.initial_spectra(range(2), 32, 32), 32, 32)
    for i, r in enumerate(results):
        assert np.abs(r.snapshots[0] - start[i]).max() < 1e-3
        assert r.method == "fourier" and r.params["method"] == "fourier" and r.params["seen_size"] == [44, 44]
        np.testing.assert_array_equal(r.image, core_fourier.to_uint8(r.raw))
    assert not np.array_equal(results[0].raw, results[1].raw)


def test_diversity_makes_the_pictures_differ(model):
    """Mean pairwise pixel correlation of 4 pictures of one channel: without the penalty vs with it."""
    plain = render(model, obj.channel("block1_conv2", 5), batch=4, steps=20, size=32)
    diverse = render(
        model,
        obj.channel("block1_conv2", 5) - DIVERSITY_WEIGHT * obj.diversity("block1_conv2"),
        batch=4,
        steps=20,
        size=32,
    )
    assert _corr(diverse) < _corr(plain) - 0.1, (_corr(diverse), _corr(plain))


def test_batch_restricted_element_without_objective_is_dead(model):
    results = render(model, obj.channel("block1_conv2", 0, batch=0), batch=2, steps=3, size=32)
    assert not results[0].dead and results[0].losses[-1] > results[0].losses[0]
    assert results[1].dead and np.all(results[1].losses == 0)  # nothing pulls element 1: frozen (§9)
    np.testing.assert_array_equal(results[1].raw, algorithm.initial_image(1, 32, 0))


def test_render_on_a_small_keras_model_with_units():
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(3, name="dense")(x)
    tiny = keras.Model(inputs, out)
    results = render(tiny, obj.channel("dense", 2), batch=2, steps=3, size=16, activation="post_relu")
    assert len(results) == 2 and results[0].layer == "dense" and results[0].losses[-1] > results[0].losses[0]
    with pytest.raises(FiltvizError, match="activation='pre_relu' needs conv layers and dense is not one"):
        render(tiny, obj.channel("dense", 2), steps=1, size=16)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(objective=obj.channel("block1_conv2", 64)), "channel 64 is out of range: block1_conv2 has 64"),
        (dict(objective=obj.channel("block9_conv1", 0)), "unknown layer 'block9_conv1'"),
        (dict(objective=obj.channel("block1_pool", 0)), "activation='pre_relu' needs conv layers and block1_pool"),
        (dict(objective=obj.channel("block1_conv2", 0), batch=0), "batch must be a whole number >= 1"),
        (dict(objective=obj.channel("block1_conv2", 0, batch=2), batch=2), "batch=2 is outside the batch of 2"),
        (dict(objective=obj.channel("block1_conv2", 0), activation="relu"), "unknown activation 'relu'"),
        (dict(objective="channel"), "objective must be built from filtviz objectives"),
        (dict(objective=obj.channel("block5_conv1", 0), size=8), "too small for block5_conv1"),
    ],
)
def test_render_refuses_bad_input_in_one_line(model, kwargs, message):
    with pytest.raises(FiltvizError, match=message) as err:
        render(model, steps=1, size=kwargs.pop("size", 32), **kwargs)
    assert "\n" not in str(err.value)


# --- visualize_filters: unit and diversity ---------------------------------------------------------


def test_neuron_unit_is_the_centre_neuron(model):
    r = visualize_filter(model, "block2_conv1", 11, steps=0, size=40, objective="post_relu", unit="neuron")
    fmap = feature_maps(model, algorithm.initial_image(11, 40, 0), ["block2_conv1"])["block2_conv1"][0]
    assert r.losses[0] == pytest.approx(float(fmap[10, 10, 11]), rel=1e-5)
    assert r.params["unit"] == "neuron" and "diversity" not in r.params
    grown = visualize_filter(model, "block2_conv1", 11, steps=4, size=40, unit="neuron")
    assert np.all(np.diff(grown.losses) > 0)
    assert "unit" not in visualize_filter(model, "block2_conv1", 11, steps=0, size=40).params


def test_diversity_groups_are_stacked_filter_by_filter_and_seeded_by_f_2_k(model):
    results = visualize_filters(
        model, "block1_conv2", "4,9", steps=2, size=32, diversity=3, objective="post_relu", snapshots=[0, 2]
    )
    assert [(r.filter_index, r.copy) for r in results] == [(4, 0), (4, 1), (4, 2), (9, 0), (9, 1), (9, 2)]
    starts = algorithm.initial_images(algorithm.element_keys([4, 9], 3), 32, 0)
    for r, start in zip(results, starts):
        np.testing.assert_array_equal(r.snapshots[0], start)
    assert results[0].params["diversity"] == 3 and results[0].params["diversity_weight"] == DIVERSITY_WEIGHT
    # the first losses: each filter's channel minus w times the penalty within its own group of 3
    fmap = feature_maps(model, starts, ["block1_conv2"])["block1_conv2"]
    channels = [4, 4, 4, 9, 9, 9]
    expected = [_interior_mean(fmap, c)[i] for i, c in enumerate(channels)] - DIVERSITY_WEIGHT * gram_similarity(
        fmap.reshape(6, -1, 64), group=3
    )
    np.testing.assert_allclose([r.losses[0] for r in results], expected, rtol=1e-4, atol=1e-3)
    record = run_record(model, results)
    assert record["filters"] == [4, 4, 4, 9, 9, 9] and record["copies"] == [0, 1, 2, 0, 1, 2]
    # a group is one unit of work: filter 9's group does not depend on filter 4's
    alone = visualize_filters(
        model, "block1_conv2", [9], steps=2, size=32, diversity=3, objective="post_relu", snapshots=[0, 2]
    )
    for a, b in zip(alone, results[3:]):
        np.testing.assert_array_equal(a.raw, b.raw)


def test_diversity_weight_given_and_refusals(model):
    r = visualize_filters(model, "block1_conv2", [0], steps=1, size=32, diversity=2, diversity_weight=0.0)
    assert r[0].params["diversity_weight"] == 0.0 and len(r) == 2
    one = visualize_filters(model, "block1_conv2", [0], steps=1, size=32, diversity_weight=5.0)  # no group: no penalty
    assert len(one) == 1 and "diversity" not in one[0].params and "diversity_weight" not in one[0].params
    for kwargs, message in [
        (dict(diversity=0), "diversity must be a whole number >= 1"),
        (dict(diversity=2, diversity_weight=-1.0), "diversity_weight must be a finite number"),
        (dict(unit="pixel"), "unknown unit 'pixel'; valid: channel, neuron"),
        (dict(diversity=2, init=np.zeros((1, 32, 32, 3), np.float32)), "init gives one start per filter"),
    ]:
        with pytest.raises(FiltvizError, match=message):
            visualize_filters(model, "block1_conv2", [0], steps=1, size=32, **kwargs)
