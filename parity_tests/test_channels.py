"""Grey (1-channel) and 4-channel pictures in both frameworks: the seeded starts of every
method are the same arrays, and the fourier and maco pictures from the same parameters, and the maco crops
of the same picture, agree to <= 1e-5 of the pixel range (255) — as the RGB parity bounds of
parity_tests/test_fourier.py and test_maco.py."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import torch

from filtviz_core import fourier, maco
from filtviz_core.methods import FourierOptions, MacoOptions, fourier_options
from tf_reference import method_parts as tf_parts
from torch_filtviz import method_parts as torch_parts
from torch_filtviz.parameterizations import FourierImage, MacoImage
from torch_filtviz.transforms import CropViews

H = W = 24
KEYS = [0, 5, (3, 2, 1)]  # two filters and a diversity element
RANGE_TOL = 1e-5 * 255.0
CPU = torch.device("cpu")


def torch_start(method: str, channels: int, options=None) -> np.ndarray:
    setting = torch_parts.Setting(
        seed=4, steps=2, lr=0.1, height=H, width=W, options=options, device=CPU, channels_last=False, channels=channels
    )
    param, _, _ = torch_parts.build(method, KEYS, slice(0, len(KEYS)), setting)
    theta = param.theta.detach()
    return (theta.permute(0, 2, 3, 1) if method == "pixel" else theta).numpy()


@pytest.mark.parametrize("channels", [1, 4])
def test_seeded_starts_are_the_same_arrays(channels, tmp_path):
    for i in range(2):
        np.save(tmp_path / f"band_{i}.npy", np.random.default_rng(i).random((H, W, channels)))
    maco_options = MacoOptions(magnitude=str(tmp_path))
    for method, options in (("pixel", None), ("fourier", FourierOptions()), ("maco", maco_options)):
        keras_side = tf_parts.assemble(method, H, W, 0.1, options, channels=channels).parameterization.start(KEYS, 4)
        torch_side = torch_start(method, channels, options)
        assert keras_side.shape[0] == len(KEYS) and channels in keras_side.shape
        assert np.array_equal(keras_side, torch_side), method


@pytest.mark.parametrize("channels", [1, 4])
@pytest.mark.parametrize("decorrelate", [True, False])
def test_fourier_pictures_from_the_same_spectrum_agree(channels, decorrelate):
    options = fourier_options({"decorrelate": decorrelate})
    spectra = np.random.default_rng(channels).normal(0, 0.5, (3, *fourier.spectrum_shape(H, W, channels)))
    spectra = spectra.astype(np.float32)
    reference = fourier.spectrum_to_image(spectra, H, W, decorrelate=decorrelate)
    assert reference.shape == (3, H, W, channels) and np.ptp(reference) > 120  # spans the range: tests something
    keras_side = tf_parts.Spectrum(H, W, options, channels=channels).picture(tf.constant(spectra)).numpy()
    torch_side = FourierImage(H, W, options, CPU, channels)(torch.from_numpy(spectra)).numpy()
    assert np.max(np.abs(keras_side - torch_side)) <= RANGE_TOL
    assert np.max(np.abs(torch_side - reference)) <= RANGE_TOL


@pytest.mark.parametrize("channels", [1, 4])
def test_maco_pictures_and_crops_agree(channels):
    rng = np.random.default_rng(10 + channels)
    mag = rng.random((channels, H, W // 2 + 1)).astype(np.float32) * 50
    phase = maco.initial_phases(KEYS, H, W, 2, channels)
    reference = maco.phase_to_image(phase, mag, H, W)
    keras_picture = tf_parts.Phase(H, W, MacoOptions(), mag).picture(tf.constant(phase)).numpy()
    torch_picture = MacoImage(mag, H, W, CPU)(torch.from_numpy(phase)).numpy()
    assert keras_picture.shape == (len(KEYS), H, W, channels)
    assert np.max(np.abs(keras_picture - torch_picture)) <= RANGE_TOL
    assert np.max(np.abs(torch_picture - reference)) <= RANGE_TOL

    options = MacoOptions(crops=3)
    crops = tf_parts.Crops(H, W, options, channels=channels)
    draws = crops.matrices(KEYS, 4, 2)[1]
    keras_views = crops.apply(tf.constant(torch_picture), tuple(tf.constant(d) for d in draws)).numpy()
    torch_views = CropViews(KEYS, 2, 4, H, W, options, CPU, False, channels)(
        torch.from_numpy(torch_picture).permute(0, 3, 1, 2), 1
    )
    torch_views = torch_views.permute(0, 2, 3, 1).numpy()
    assert keras_views.shape == torch_views.shape == (3 * len(KEYS), H, W, channels)
    assert np.max(np.abs(keras_views - torch_views)) <= RANGE_TOL
