"""tf_reference.model: Keras' summary, submodels, caffe preprocessing and feature maps."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from filtviz_core.errors import FiltvizError
from filtviz_core.images import load_image
from filtviz_core.vgg16 import CONV_NAMES, FILTER_COUNTS, POOL_NAMES, TOTAL_PARAMS, block_of
from tf_reference import caffe_preprocess, conv_layer_names, feature_maps, load_vgg16, submodel, summary


@pytest.fixture(scope="module")
def model(weights_file):
    return load_vgg16()


@pytest.fixture(scope="module")
def photo():
    """The default sample photo at 64 px: real image statistics, cheap to run."""
    return load_image(None, size=64)


def test_summary_is_keras_own_text(model):
    text = summary(model)
    assert text.startswith('Model: "vgg16"')
    assert f"Total params: {TOTAL_PARAMS:,}" in text
    assert "14,714,688" in text
    for name in CONV_NAMES + POOL_NAMES:
        assert name in text
    assert model.count_params() == TOTAL_PARAMS


def test_conv_layer_names_in_order(model):
    assert conv_layer_names(model) == list(CONV_NAMES)


@pytest.mark.parametrize("side", [224, 128])
def test_submodel_output_shapes_for_every_conv_layer(model, side):
    for name in CONV_NAMES:
        sub = submodel(model, name)
        assert isinstance(sub, keras.Model)
        expected = side // 2 ** (block_of(name) - 1)
        assert tuple(sub.compute_output_shape((1, side, side, 3))) == (1, expected, expected, FILTER_COUNTS[name])


def test_submodel_forward_matches_shape_at_128(model):
    maps = feature_maps(model, np.full((128, 128, 3), 128, np.uint8), list(CONV_NAMES))
    for name in CONV_NAMES:
        side = 128 // 2 ** (block_of(name) - 1)
        assert maps[name].shape == (1, side, side, FILTER_COUNTS[name])
        assert maps[name].dtype == np.float32


def test_submodel_unknown_layer_lists_valid_names(model):
    with pytest.raises(ValueError, match=r"unknown layer 'block6_conv1'; valid: block1_conv1, block1_conv2") as err:
        submodel(model, "block6_conv1")
    assert isinstance(err.value, FiltvizError)
    assert "block5_pool" in str(err.value) and "\n" not in str(err.value)


def test_caffe_preprocess_equals_keras_preprocess_input():
    x = np.random.default_rng(1).uniform(0, 255, (2, 5, 7, 3)).astype(np.float32)
    ours = np.asarray(caffe_preprocess(x))
    theirs = keras.applications.vgg16.preprocess_input(x.copy())
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)
    # BGR order: the model's channel 0 is the image's blue channel minus 103.939.
    np.testing.assert_allclose(ours[..., 0], x[..., 2] - 103.939, atol=1e-5)


def _numpy_block1_conv1(model, image_rgb: np.ndarray) -> np.ndarray:
    """Independent block1_conv1 (same padding, caffe input, ReLU) in plain numpy."""
    kernel, bias = model.get_layer("block1_conv1").get_weights()
    x = image_rgb.astype(np.float64)[..., ::-1] - np.array([103.939, 116.779, 123.68])
    padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    h, w = x.shape[:2]
    patches = np.stack([padded[i : i + h, j : j + w] for i in range(3) for j in range(3)], axis=2)  # (h, w, 9, 3)
    out = np.einsum("hwkc,kcf->hwf", patches, kernel.reshape(9, 3, -1).astype(np.float64)) + bias
    return np.maximum(out, 0.0)


def test_feature_maps_values_on_a_fixed_image(model, photo):
    maps = feature_maps(model, photo, ["block1_conv1", "block3_conv1", "block5_pool"])
    assert list(maps) == ["block1_conv1", "block3_conv1", "block5_pool"]
    assert maps["block1_conv1"].shape == (1, 64, 64, 64)
    assert maps["block3_conv1"].shape == (1, 16, 16, 256)
    assert maps["block5_pool"].shape == (1, 2, 2, 512)
    expected = _numpy_block1_conv1(model, photo)
    np.testing.assert_allclose(maps["block1_conv1"][0], expected, rtol=1e-4, atol=1e-3)
    for fmap in maps.values():
        assert fmap.min() >= 0.0  # post-ReLU
        assert fmap.max() > 1.0  # a real photo lights filters up


def test_feature_maps_batch_dtype_and_size_handling(model, photo):
    one = feature_maps(model, photo, "block2_conv1")["block2_conv1"]
    batch = feature_maps(model, np.stack([photo, photo[::-1]]).astype(np.float32), "block2_conv1")["block2_conv1"]
    assert batch.shape == (2, 32, 32, 128)
    np.testing.assert_allclose(batch[0], one[0], rtol=1e-5, atol=1e-4)
    assert not np.allclose(batch[1], batch[0])
    odd = feature_maps(model, np.full((45, 33, 3), 90, np.uint8), "block5_conv3")["block5_conv3"]
    assert odd.shape == (1, 2, 2, 512)  # 45 -> 22 -> 11 -> 5 -> 2 ; 33 -> 16 -> 8 -> 4 -> 2


def test_feature_maps_errors(model, photo):
    with pytest.raises(FiltvizError, match="too small"):
        feature_maps(model, np.zeros((31, 64, 3), np.uint8), ["block1_conv1"])
    with pytest.raises(FiltvizError, match="unknown layer 'conv1'"):
        feature_maps(model, photo, ["block1_conv1", "conv1"])
    with pytest.raises(FiltvizError, match="must be"):
        feature_maps(model, np.zeros((64, 64), np.uint8), ["block1_conv1"])
