"""Feature maps, and a quick pass over the whole genuine VGG16 (every conv layer, maps and ascent)."""

import numpy as np
import pytest
import torch

from filtviz_core import vgg16 as spec
from filtviz_core.errors import FiltvizError
from filtviz_core.images import load_image
from torch_filtviz import feature_maps, layer_channels, layer_names, load_vgg16, visualize_filters


@pytest.fixture(scope="module")
def vgg(weights_file):
    return load_vgg16(weights_file.path)


@pytest.fixture(scope="module")
def photo():
    return load_image(size=64)  # the sample photo, (64, 64, 3) uint8


def test_maps_of_the_sample_photo(vgg, photo):
    maps = feature_maps(vgg, photo, ["block1_conv2", "block3_conv1", "block5_pool"])
    assert list(maps) == ["block1_conv2", "block3_conv1", "block5_pool"]
    assert maps["block1_conv2"].shape == (1, 64, 64, 64)
    assert maps["block3_conv1"].shape == (1, 256, 16, 16)
    assert maps["block5_pool"].shape == (1, 512, 2, 2)
    for m in maps.values():
        assert m.dtype == torch.float32 and m.device.type == "cpu" and not m.requires_grad
        assert m.min() >= 0 and m.max() > 0  # post-ReLU, and not all dead
    x = torch.from_numpy(photo.astype(np.float32)).permute(2, 0, 1)[None]
    with torch.no_grad():
        full = vgg.features[:4](vgg.preprocess(x))  # through block1_conv2's ReLU
    torch.testing.assert_close(maps["block1_conv2"], full, rtol=1e-6, atol=1e-5)


def test_module_path_is_the_module_output(vgg, photo):
    maps = feature_maps(vgg, photo, ["features.2", "block1_conv2"])
    assert maps["features.2"].min() < 0  # the conv before its ReLU
    torch.testing.assert_close(maps["features.2"].clamp_min(0), maps["block1_conv2"])


def test_input_forms_agree(vgg, photo):
    one = feature_maps(vgg, photo, "block2_conv1")["block2_conv1"]
    batch = np.stack([photo, photo[::-1]]).astype(np.float32)
    two = feature_maps(vgg, batch, ["block2_conv1"])["block2_conv1"]
    tensor = feature_maps(vgg, torch.from_numpy(batch).permute(0, 3, 1, 2), ["block2_conv1"])["block2_conv1"]
    assert two.shape == (2, 128, 32, 32)
    torch.testing.assert_close(two[:1], one, rtol=1e-5, atol=1e-5 * float(one.max()))  # kernels vary with N
    torch.testing.assert_close(tensor, two)
    assert not torch.equal(two[0], two[1])


def test_forward_stops_after_deepest_layer(vgg, photo):
    calls = []
    handle = vgg.features[10].register_forward_hook(lambda *a: calls.append(1))  # block3_conv1
    try:
        feature_maps(vgg, photo, ["block1_conv1", "block2_pool"])
        assert calls == []
        feature_maps(vgg, photo, ["block3_conv1"])
        assert calls == [1]
    finally:
        handle.remove()
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in vgg.modules())


@pytest.mark.parametrize(
    "images, layers, message",
    [
        (np.zeros((8, 8, 3), np.uint8), "block5_conv1", "too small"),
        (np.zeros((64, 64), np.uint8), "block1_conv1", "images must be"),
        (np.zeros((64, 64, 3), np.uint8), "block6_conv1", "unknown layer"),
        (np.zeros((64, 64, 3), np.uint8), [], "no layer"),
        (torch.zeros(1, 1, 64, 64), "block1_conv1", "must be"),
        (torch.zeros(1, 3, 8, 8), "block5_conv1", "too small"),
    ],
)
def test_bad_input(vgg, images, layers, message):
    with pytest.raises(FiltvizError, match=message):
        feature_maps(vgg, images, layers)


def test_small_image_ok_for_shallow_layers(vgg):
    maps = feature_maps(vgg, np.full((8, 8, 3), 100, np.uint8), "block2_conv1")
    assert maps["block2_conv1"].shape == (1, 128, 4, 4)


def test_whole_vgg16(vgg, photo):
    """Every layer of the genuine network: map shapes and channel counts, and one ascent step that
    raises the objective of one filter in each of the 13 conv layers."""
    names = layer_names(vgg)
    assert len(names) == 18
    maps = feature_maps(vgg, photo, names)
    side = 64
    for name in names:
        if name.endswith("_pool"):
            side //= 2
        count = spec.FILTER_COUNTS.get(name, maps[name].shape[1])
        assert maps[name].shape == (1, count, side, side), name
        assert torch.isfinite(maps[name]).all() and (maps[name] > 0).any(), name
    for name in spec.CONV_NAMES:
        assert layer_channels(vgg, name) == spec.FILTER_COUNTS[name]
        f = spec.FILTER_COUNTS[name] - 1
        r = visualize_filters(vgg, name, [f], steps=2, size=32, progress=False)
        assert r.losses.shape == (1, 3) and not r.dead[0]
        assert r.losses[0, 2] > r.losses[0, 1] > r.losses[0, 0], (name, r.losses)
