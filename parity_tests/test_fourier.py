"""The fourier method (SPEC.md §15) in both frameworks: the picture from a spectrum (<= 1e-6 of its range),
a transform of a picture (<= 1e-5), the gradient through both, and the whole method's loss histories from
the same seeded spectra and draws (bounds from the measured round-off floor, and why:
parity_tests/fourier_parity.py)."""

from __future__ import annotations

import numpy as np
import pytest

from filtviz_core import fourier, transforms
from filtviz_core.methods import FourierOptions, fourier_options
from parity_tests.compare import Report, cosine
from parity_tests.fourier_parity import (
    GRADIENT_MIN_COSINE,
    ascent_checks,
    image_checks,
    run_keras,
    run_torch,
    spectrum_gradients,
    transform_checks,
)

# Fast: one case per kind of bound (per step, blocks 1-3, blocks 4-5), small; --parity-full: 64 px, 100 steps.
FAST = [("block1_conv1", [0, 63]), ("block1_conv2", [1]), ("block4_conv1", [0])]
FAST_SIZE, FAST_STEPS = 48, 60
FULL = [
    ("block1_conv2", [0, 2, 3]),
    ("block2_conv1", [0, 1, 2, 3]),
    ("block3_conv1", [0, 1]),
    ("block3_conv3", [0, 1]),
    ("block4_conv2", [0, 1]),
    ("block5_conv1", [0, 1]),
    ("block5_conv3", [0, 1, 2, 3]),
]
SIZE, STEPS = 64, 100


@pytest.mark.parametrize("height,width", [(48, 48), (37, 50)])
def test_picture_from_a_given_spectrum_agrees(height, width):
    """Spectra far from the seeded start (whose picture is grey within a few levels, where float32's own
    resolution near 128 is already 1e-6 of the range), so that the pictures span most of 0-255."""
    rng = np.random.default_rng(7)
    cases = [
        (FourierOptions(), 1.0),
        (FourierOptions(), 0.3),
        (fourier_options({"decorrelate": False, "decay": 1.5, "divisor": 2.0}), 0.03),
    ]
    for i, (options, std) in enumerate(cases):
        spectra = rng.normal(0, std, (3, *fourier.spectrum_shape(height, width))).astype(np.float32)
        picture = fourier.spectrum_to_image(
            spectra, height, width, decay=options.decay, divisor=options.divisor, decorrelate=options.decorrelate
        )
        assert np.ptp(picture) > 120, "the case must span the pixel range to test anything"
        report = Report(image_checks(spectra, height, width, options, label=f"{height}x{width}/case{i}"))
        assert report.passed, report.summary()


def test_a_given_transform_agrees():
    """Every draw kind at once (crops, zoom, rotation) on a contrasty picture, plus the identity and a pure shift."""
    options = FourierOptions()
    rng = np.random.default_rng(3)
    images = rng.uniform(0, 255, (4, 48, 48, 3)).astype(np.float32)
    out_h, out_w = transforms.output_size(48, 48, options)
    matrices = transforms.affines(0, [0, 1, 2, 3], [5], 48, 48, options)[0]
    wide = fourier_options({"scale": (0.5, 2.0), "rotate": 180.0, "pad": 30})
    matrices[1] = transforms.affine(transforms.draw(0, 1, 9, wide), 48, 48, wide)
    matrices[2] = [[1, 0, 0], [0, 1, 0]]
    matrices[3] = [[1, 0, -5], [0, 1, 7]]
    report = Report(transform_checks(images, matrices, out_h, out_w, options.pad_value))
    assert report.passed, report.summary()


def test_gradient_with_respect_to_the_spectrum_agrees():
    """The adjoints of §15.2 and §15.4: the gradient of a fixed weighting of the transformed picture."""
    options = FourierOptions()
    height = width = 40
    spectra = fourier.initial_spectra([0, 1], height, width, 0, 0.5)
    matrices = transforms.affines(0, [0, 1], [3], height, width, options)[0]
    out_h, out_w = transforms.output_size(height, width, options)
    weights = np.random.default_rng(1).normal(size=(2, out_h, out_w, 3)).astype(np.float32)
    g_tf, g_torch = spectrum_gradients(spectra, matrices, weights, height, width, options)
    for a, b in zip(g_tf, g_torch):
        assert cosine(a, b) >= GRADIENT_MIN_COSINE
    assert np.max(np.abs(g_tf - g_torch)) <= 1e-5 * np.max(np.abs(g_tf))


def _both(keras_vgg, torch_vgg, layer, filters, steps=STEPS, size=SIZE):
    return (
        run_keras(keras_vgg, layer, filters, steps=steps, size=size),
        run_torch(torch_vgg, layer, filters, steps=steps, size=size),
    )


@pytest.mark.parametrize("layer,filters", FAST, ids=[layer for layer, _ in FAST])
def test_loss_histories_agree(layer, filters, keras_vgg, torch_vgg):
    k, t = _both(keras_vgg, torch_vgg, layer, filters, FAST_STEPS, FAST_SIZE)
    assert k.losses.shape == t.losses.shape == (len(filters), FAST_STEPS + 1)
    assert np.all(k.losses[:, -1] > k.losses[:, 0]), "the ascent must raise the objective"
    report = Report(ascent_checks(k, t))
    assert report.passed, report.summary()


@pytest.mark.slow
@pytest.mark.parametrize("layer,filters", FULL, ids=[layer for layer, _ in FULL])
def test_loss_histories_agree_full(layer, filters, keras_vgg, torch_vgg):
    k, t = _both(keras_vgg, torch_vgg, layer, filters)
    report = Report(ascent_checks(k, t))
    assert report.passed, report.summary()


def test_dead_filters_flagged_alike(keras_vgg, torch_vgg):
    """post_relu from the grey start: block5_conv3 filters that are off everywhere have a zero gradient;
    both frameworks flag the same ones and keep their losses at the first value."""
    filters = list(range(8))
    k = run_keras(keras_vgg, "block5_conv3", filters, steps=2, size=FAST_SIZE, objective="post_relu")
    t = run_torch(torch_vgg, "block5_conv3", filters, steps=2, size=FAST_SIZE, objective="post_relu")
    assert any(k.dead), "the case must contain a dead filter to test anything"
    assert k.dead == t.dead
    dead = np.array(k.dead)
    np.testing.assert_array_equal(t.losses[dead], 0.0)
    np.testing.assert_array_equal(t.raw[dead], t.snapshots[0][dead])
