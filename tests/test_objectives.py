"""Objectives (channel, neuron, direction, diversity, batch=i, sums) and render, in torch.

Values are checked against numpy written out here from the definitions (filtviz_core/objectives.py),
on a small convolutional network, on VGG16 and on a channels-last layer (ConvNeXt).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import torch_filtviz as fv
from filtviz_core import algorithm as alg
from filtviz_core.errors import FiltvizError
from filtviz_core.objectives import gram_similarity
from torch_filtviz import objectives as obj

FAST = dict(progress=False)


class Net(nn.Module):
    """conv(3->6, 3x3) + ReLU + conv(6->5, 3x3) + ReLU on raw pixels scaled to ~1."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.c1 = nn.Conv2d(3, 6, 3, padding=1)
        self.r1 = nn.ReLU()
        self.c2 = nn.Conv2d(6, 5, 3, padding=1)
        self.r2 = nn.ReLU()

    def forward(self, x):
        return self.r2(self.c2(self.r1(self.c1(x / 255.0))))


@pytest.fixture(scope="module")
def net():
    return Net().eval()


@pytest.fixture(scope="module")
def pictures():
    return torch.from_numpy(alg.initial_images([0, 1, 2], 12, 5) * 3 - 200).permute(0, 3, 1, 2).contiguous()


def pre_activation(net, pictures):
    with torch.no_grad():
        return net.c2(net.r1(net.c1(pictures / 255.0))).numpy().astype(np.float64)  # (B, 5, 12, 12)


def test_words_and_algebra():
    a, b = obj.channel("c2", 1), obj.diversity("c2")
    assert str(a - 100 * b) == "channel(c2, 1) - 100 * diversity(c2)"
    assert str(sum([a, obj.neuron("c2", 2, x=3, y=4, batch=1)])) == "channel(c2, 1) + neuron(c2, 2, x=3, y=4, batch=1)"
    assert str(obj.sum([a, -a])) == "channel(c2, 1) - channel(c2, 1)"
    assert str(a * 2 / 4) == "0.5 * channel(c2, 1)" and str(-a) == "-channel(c2, 1)"
    assert (a + b).layers() == ["c2"] and (a + obj.channel("c1", 0)).layers() == ["c2", "c1"]
    record = (a - 3 * b).as_record()
    assert record["terms"][1] == {"weight": -3.0, "kind": "diversity", "layer": "c2"}
    with pytest.raises(TypeError):
        a * "2"
    with pytest.raises(FiltvizError, match="channel must be a whole number"):
        obj.channel("c2", -1)
    with pytest.raises(FiltvizError, match="non-zero vector"):
        obj.direction("c2", [0, 0])


def test_values_match_their_definitions(net, pictures):
    a = pre_activation(net, pictures)
    interior = a[:, :, 2:-2, 2:-2]
    got = obj.objective_values(net, obj.channel("c2", 3), pictures).detach().numpy()
    np.testing.assert_allclose(got, interior[:, 3].mean(axis=(1, 2)), rtol=1e-5)
    got = obj.objective_values(net, obj.neuron("c2", 4), pictures).detach().numpy()
    np.testing.assert_allclose(got, a[:, 4, 6, 6], rtol=1e-5)  # the centre (H // 2, W // 2)
    got = obj.objective_values(net, obj.neuron("c2", 4, x=1, y=9), pictures).detach().numpy()
    np.testing.assert_allclose(got, a[:, 4, 9, 1], rtol=1e-5)
    v = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    got = obj.objective_values(net, obj.direction("c2", v), pictures).detach().numpy()
    want = np.einsum("bchw,c->bhw", interior, v / np.linalg.norm(v)).mean(axis=(1, 2))
    np.testing.assert_allclose(got, want, rtol=1e-5)
    got = obj.objective_values(net, obj.diversity("c2"), pictures).detach().numpy()
    want = gram_similarity(a.reshape(3, 5, -1).transpose(0, 2, 1))
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert want.min() > 0 and want.sum() < 2  # similar pictures: Gram cosines near 1, (B - 1) / B at most
    got = obj.objective_values(net, obj.channel("c2", 3) - 2 * obj.neuron("c2", 1, batch=2), pictures)
    want = interior[:, 3].mean(axis=(1, 2)) - 2 * np.array([0, 0, a[2, 1, 6, 6]])
    np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-5)
    # post_relu: the ReLU's output
    got = obj.objective_values(net, obj.neuron("c2", 4), pictures, activation="post_relu").detach().numpy()
    np.testing.assert_allclose(got, np.maximum(a[:, 4, 6, 6], 0), rtol=1e-5)


def test_diversity_groups_couple_only_their_own_elements():
    rng = np.random.default_rng(0)
    acts = rng.normal(size=(4, 7, 3))
    whole = gram_similarity(acts)
    pairs = gram_similarity(acts, group=2)
    np.testing.assert_allclose(pairs[:2], gram_similarity(acts[:2]))
    np.testing.assert_allclose(pairs[2:], gram_similarity(acts[2:]))
    assert not np.allclose(whole, pairs)


def test_gradient_flows_to_the_pictures(net, pictures):
    x = pictures.clone().requires_grad_(True)
    value = obj.objective_values(net, obj.channel("c2", 1) - 10 * obj.diversity("c2"), x)
    (grad,) = torch.autograd.grad(value.sum(), x)
    assert grad.shape == x.shape and torch.isfinite(grad).all() and grad.abs().max() > 0


def test_bad_objectives_get_one_line(net, pictures):
    with pytest.raises(FiltvizError, match=r"channel 9 is out of range: c2 has 5 channels \(0-4\)"):
        obj.objective_values(net, obj.channel("c2", 9), pictures)
    with pytest.raises(FiltvizError, match="the vector has 2 entries; c2 has 5 channels"):
        obj.objective_values(net, obj.direction("c2", [1, 2]), pictures)
    with pytest.raises(FiltvizError, match=r"batch=5 is outside the batch of 3"):
        obj.objective_values(net, obj.channel("c2", 1, batch=5), pictures)
    with pytest.raises(FiltvizError, match="x=40 lies outside the map's 12 columns"):
        obj.objective_values(net, obj.neuron("c2", 1, x=40), pictures)
    with pytest.raises(FiltvizError, match="unknown layer 'nope'"):
        fv.render(net, obj.channel("nope", 1), batch=2, steps=1, size=12, **FAST)
    with pytest.raises(FiltvizError, match="objective must be built from filtviz objectives"):
        fv.render(net, "c2:1", batch=2, steps=1, size=12, **FAST)
    with pytest.raises(FiltvizError, match="batch must be a whole number >= 1"):
        fv.render(net, obj.channel("c2", 1), batch=0, steps=1, size=12, **FAST)


@pytest.mark.parametrize("method", ["pixel", "fourier"])
def test_render_starts_from_the_seeded_draws_and_records_its_objective(net, method):
    goal = obj.channel("c2", 1) + 0.5 * obj.neuron("c2", 3, batch=0)
    res = fv.render(net, goal, batch=3, method=method, steps=4, size=12, seed=7, snapshots=[0, 4], **FAST)
    assert res.images.shape == (3, 12, 12, 3) and res.losses.shape == (3, 5) and res.filters == [0, 1, 2]
    if method == "pixel":
        np.testing.assert_array_equal(res.snapshots[0], alg.initial_images([0, 1, 2], 12, 7))
    start = torch.from_numpy(res.snapshots[0]).permute(0, 3, 1, 2).contiguous()
    if method == "pixel":  # the fourier method's losses are measured under its random views
        np.testing.assert_allclose(res.losses[:, 0], obj.objective_values(net, goal, start).detach().numpy(), rtol=1e-5)
        assert (res.losses[:, -1] > res.losses[:, 0]).all()
    record = res.run_record()
    assert record["objective"]["text"] == "channel(c2, 1) + 0.5 * neuron(c2, 3, batch=0)"
    assert res.params["objective"] == record["objective"]["text"] and res.params["batch"] == 3


def test_render_of_a_filter_is_visualize_filters_of_that_filter(net):
    """Element 0 of render is seeded by key 0, like filter 0 of visualize_filters: the same run."""
    one = fv.render(net, obj.channel("c2", 0, batch=0), batch=1, steps=5, size=12, **FAST)
    ref = fv.visualize_filters(net, "c2", [0], steps=5, size=12, **FAST)
    np.testing.assert_array_equal(one.raw, ref.raw)
    np.testing.assert_array_equal(one.losses, ref.losses)


@pytest.fixture(scope="module")
def vgg(weights_file):
    return fv.load_vgg16(weights_file.path)


def test_direction_along_one_channel_is_that_channel(vgg):
    d = fv.render(vgg, obj.direction("block3_conv1", np.eye(256)[7]), batch=2, steps=3, size=40, **FAST)
    c = fv.render(vgg, obj.channel("block3_conv1", 7), batch=2, steps=3, size=40, **FAST)
    np.testing.assert_allclose(d.losses, c.losses, rtol=1e-5)


def test_neuron_unit_maximizes_the_centre(vgg):
    res = fv.visualize_filters(vgg, "block2_conv1", [3, 30], unit="neuron", steps=6, size=40, **FAST)
    assert res.params["unit"] == "neuron"
    x = torch.from_numpy(res.raw).permute(0, 3, 1, 2).contiguous()
    centre = torch.stack(
        [obj.objective_values(vgg, obj.neuron("block2_conv1", f), x[i : i + 1])[0] for i, f in enumerate([3, 30])]
    )
    np.testing.assert_allclose(res.losses[:, -1], centre.detach().numpy(), rtol=1e-4)
    channel = fv.visualize_filters(vgg, "block2_conv1", [3, 30], steps=6, size=40, **FAST)
    assert not np.allclose(res.raw, channel.raw)


def test_diversity_layout_seeds_and_groups(vgg):
    res = fv.visualize_filters(vgg, "block3_conv1", [5, 9], diversity=3, steps=4, size=40, **FAST)
    assert res.images.shape == (6, 40, 40, 3) and res.filters == [5, 5, 5, 9, 9, 9] and res.diversity == 3
    np.testing.assert_array_equal(res.snapshots[4][0], res.raw[0])
    assert res.params["diversity"] == 3 and res.params["diversity_weight"] > 0
    plain = fv.visualize_filters(vgg, "block3_conv1", [5, 9], steps=0, size=40, snapshots=[0], **FAST)
    start = fv.visualize_filters(vgg, "block3_conv1", [5, 9], diversity=3, steps=0, size=40, snapshots=[0], **FAST)
    np.testing.assert_array_equal(start.raw, alg.initial_images(alg.element_keys([5, 9], 3), 40, 0))
    assert not np.array_equal(start.raw[0], start.raw[1]) and not np.array_equal(start.raw[0], plain.raw[0])
    # chunks hold whole groups: a batch size of 4 runs groups of 3 one at a time, with the same numbers
    chunked = fv.visualize_filters(vgg, "block3_conv1", [5, 9], diversity=3, steps=4, size=40, batch_size=4, **FAST)
    assert chunked.params["batch_size"] == 3
    np.testing.assert_allclose(chunked.losses, res.losses, rtol=1e-4)
    with pytest.raises(FiltvizError, match="diversity must be a whole number >= 1"):
        fv.visualize_filters(vgg, "block3_conv1", [5], diversity=0, **FAST)
    with pytest.raises(FiltvizError, match="unknown unit 'pixel'"):
        fv.visualize_filters(vgg, "block3_conv1", [5], unit="pixel", **FAST)


def _mean_pairwise_correlation(images: np.ndarray) -> float:
    grey = images.astype(np.float64).mean(axis=3).reshape(len(images), -1)
    c = np.corrcoef(grey)
    k = len(images)
    return float((c.sum() - k) / (k * (k - 1)))


def test_diversity_penalty_makes_the_pictures_differ(vgg):
    """Same starts, same steps: the penalty lowers the Gram similarity of the group at the layer."""
    kw = dict(method="fourier", steps=24, size=48, **FAST)
    goal = obj.channel("block3_conv3", 4)
    alike = fv.render(vgg, goal, batch=3, **kw)
    apart = fv.render(vgg, goal - 1e4 * obj.diversity("block3_conv3"), batch=3, **kw)

    def similarity(res):
        x = torch.from_numpy(res.raw).permute(0, 3, 1, 2).contiguous()
        return float(obj.objective_values(vgg, obj.diversity("block3_conv3"), x).sum())

    assert similarity(apart) < 0.8 * similarity(alike)


def test_channels_last_units():
    """ConvNeXt's features.1.0.block.3 is an nn.Linear on NHWC maps: 384 units, channel dim last."""
    model = fv.load_model("convnext_tiny", weights="random")
    layer = "features.1.0.block.3"
    x = torch.from_numpy(alg.initial_images([0, 1], 64, 0)).permute(0, 3, 1, 2).contiguous()
    target = fv.resolve_target(model, layer, "pre_relu")
    with torch.no_grad(), fv.capture(model, target) as cap:
        act = cap(x)[layer].float().numpy()  # (2, 16, 16, 384)
    assert act.shape[-1] == 384
    with torch.no_grad():
        got = obj.objective_values(model, obj.channel(layer, 300) + obj.neuron(layer, 7, x=3, y=5), x).numpy()
    np.testing.assert_allclose(got, act[:, 2:-2, 2:-2, 300].mean(axis=(1, 2)) + act[:, 5, 3, 7], rtol=1e-4)
    res = fv.render(model, obj.channel(layer, 383) - 10 * obj.diversity(layer), batch=2, steps=2, size=64, **FAST)
    assert res.losses.shape == (2, 3) and np.isfinite(res.losses).all()
