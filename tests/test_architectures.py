"""The right tensor on real torchvision architectures (random weights, offline).

For each network, the pre-activation that the product captures for a layer equals a forward pass
computed by hand up to that point, the objective of each filter is that tensor's interior mean,
and no filter is dead at the start. Covered: VGG16 (torchvision's own, ``ReLU(inplace=True)``),
ResNet-18 (one ReLU module called twice per block), GoogLeNet (``F.relu`` inside ``BasicConv2d``),
MobileNetV3-small (Hardswish), ConvNeXt-tiny (LayerNorm + GELU on channels-last maps).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

import torch_filtviz as fv
from filtviz_core.algorithm import interior
from filtviz_core.errors import FiltvizError

SIZE = 64


def build(name: str, **kwargs) -> fv.PixelModel:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = torchvision.models.get_model(name, weights=None, **kwargs).eval()
    return fv.wrap_model(net, "imagenet", name=name)


def pixels(n: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return 128 + 40 * torch.randn(n, 3, SIZE, SIZE, generator=g)


def captured(model, layer: str, x: torch.Tensor) -> tuple[fv.Target, torch.Tensor]:
    target = fv.resolve_target(model, layer, "pre_relu")
    with torch.no_grad(), fv.capture(model, target) as cap:
        return target, cap(x)[target.name]


def interior_means(maps: torch.Tensor, filters: list[int], channels_last: bool = False) -> torch.Tensor:
    """The objective of filter f on image i, written out: mean of its map over the interior."""
    if channels_last:
        maps = maps.permute(0, 3, 1, 2)
    rows, cols = interior(maps.shape[2], maps.shape[3])
    return torch.stack([maps[i, f, rows, cols].mean() for i, f in enumerate(filters)])


def check_objective_and_dead(model, layer: str, hand: torch.Tensor, x: torch.Tensor, channels_last=False):
    filters = [0, 3]
    values = fv.filter_objective(model, layer, filters, x)
    torch.testing.assert_close(values, interior_means(hand, filters, channels_last), rtol=1e-5, atol=1e-5)
    res = fv.visualize_filters(model, layer, "0-7", steps=0, size=SIZE, progress=False)
    assert not res.dead.any(), f"{layer}: dead filters at the start {np.flatnonzero(res.dead)}"
    assert res.target["tensor"] in ("input", "output") and res.target["module"]
    return res


@pytest.fixture(scope="module")
def x():
    return pixels()


def test_torchvision_vgg16_with_inplace_relu(x):
    model = build("vgg16")
    net = model.features
    assert isinstance(net.features[29], torch.nn.ReLU) and net.features[29].inplace
    pre = model.preprocess(x)
    with torch.no_grad():
        hand = net.features[:29](pre)  # up to block5_conv3's conv, before its in-place ReLU
    target, got = captured(model, "features.28", x)
    assert (target.path, target.where) == ("features.features.28", "output")
    torch.testing.assert_close(got, hand, rtol=1e-5, atol=1e-4)
    assert (got < 0).any()  # the in-place ReLU after it did not overwrite the capture
    res = check_objective_and_dead(model, "features.28", hand, x)
    assert res.target["module"] == "features.28"


def test_resnet18_reused_relu_second_call(x):
    model = build("resnet18")
    net = model.features
    with torch.no_grad():
        h = net.layer3(net.layer2(net.layer1(net.maxpool(net.relu(net.bn1(net.conv1(model.preprocess(x))))))))
        h = net.layer4[0](h)
        block = net.layer4[1]
        inner = F.relu(block.bn1(block.conv1(h)))
        hand = block.bn2(block.conv2(inner)) + h  # the input of the block's ReLU, second call
    target, got = captured(model, "layer4.1.conv2", x)
    assert (target.path, target.where, target.call) == ("features.layer4.1.relu", "input", 1)
    torch.testing.assert_close(got, hand, rtol=1e-5, atol=1e-4)
    res = check_objective_and_dead(model, "layer4.1.conv2", hand, x)
    assert (res.target["module"], res.target["tensor"], res.target["call"]) == ("layer4.1.relu", "input", 1)
    # the first call: conv1's pre-activation is bn1's output
    _t1, got1 = captured(model, "layer4.1.conv1", x)
    torch.testing.assert_close(got1, block.bn1(block.conv1(h)), rtol=1e-5, atol=1e-4)
    with pytest.raises(FiltvizError, match=r"called 2 times .* call 2: layer4.1.conv2 or layer4.1.bn2"):
        fv.resolve_target(model, "layer4.1.relu", "pre_relu")


def test_googlenet_functional_relu(x):
    model = build("googlenet", aux_logits=False, init_weights=False)
    net = model.features
    seen = {}
    handle = net.inception4c.register_forward_pre_hook(lambda m, a: seen.setdefault("in", a[0]))
    with torch.no_grad():
        net(model.preprocess(x))
    handle.remove()
    branch = net.inception4c.branch2
    with torch.no_grad():
        first = F.relu(branch[0].bn(branch[0].conv(seen["in"])))
        hand = branch[1].bn(branch[1].conv(first))  # BasicConv2d: F.relu(bn(conv(x))) -> before the relu
    target, got = captured(model, "inception4c.branch2.1.conv", x)
    assert (target.path, target.where) == ("features.inception4c.branch2.1.bn", "output")
    torch.testing.assert_close(got, hand, rtol=1e-5, atol=1e-5)
    assert (got < 0).any()  # not the post-ReLU output
    check_objective_and_dead(model, "inception4c.branch2.1.conv", hand, x)
    # conv1, a BasicConv2d block: its pre-activation is its bn's output, not its (activated) output
    with torch.no_grad():
        stem = net.conv1.bn(net.conv1.conv(model.preprocess(x)))
    _, got = captured(model, "conv1", x)
    torch.testing.assert_close(got, stem, rtol=1e-5, atol=1e-5)
    with pytest.raises(FiltvizError, match=r"inception3a' concatenates 4 activated branches.*inception3a.branch1.bn"):
        fv.resolve_target(model, "inception3a", "pre_relu")


def test_mobilenet_v3_hardswish(x):
    model = build("mobilenet_v3_small")
    net = model.features
    with torch.no_grad():
        h = net.features[3](net.features[2](net.features[1](net.features[0](model.preprocess(x)))))
        expand = net.features[4].block[0]
        hand = expand[1](expand[0](h))  # conv + BN, before the Hardswish
    assert isinstance(expand[2], torch.nn.Hardswish)
    _target, got = captured(model, "features.4.block.0.0", x)
    torch.testing.assert_close(got, hand, rtol=1e-5, atol=1e-5)
    check_objective_and_dead(model, "features.4.block.0.0", hand, x)


def test_convnext_tiny_layernorm_gelu_channels_last(x):
    model = build("convnext_tiny")
    net = model.features
    with torch.no_grad():
        h = net.features[0](model.preprocess(x))
        block = net.features[1][0].block
        hand = block[3](block[2](block[1](block[0](h))))  # dwconv, permute, LayerNorm, Linear: before the GELU
    assert isinstance(block[4], torch.nn.GELU) and hand.shape[-1] == 384  # (N, H, W, C): channels last
    target, got = captured(model, "features.1.0.block.3", x)
    assert target.channel_dim == -1
    torch.testing.assert_close(got, hand, rtol=1e-5, atol=1e-5)
    check_objective_and_dead(model, "features.1.0.block.3", hand, x, channels_last=True)
    res = fv.visualize_filters(model, "features.1.0.block.4", [383], steps=0, size=SIZE, progress=False)
    assert res.target["module"] == "features.1.0.block.4" and res.target["tensor"] == "input"
