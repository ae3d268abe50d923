"""The fourier method's framework-free core (filtviz_core: fourier, transforms, methods), in numpy only."""

from __future__ import annotations

import numpy as np
import pytest

from filtviz_core import fourier, methods, transforms
from filtviz_core.errors import FiltvizError
from filtviz_core.methods import FourierOptions, fourier_options


def test_frequency_scale_is_one_over_f_with_the_constant_term_floored():
    scale = fourier.frequency_scale(8, 8)
    assert scale.shape == (8, 5)
    assert scale[0, 0] == 8.0  # f = 0 -> scaled like 1 / max(H, W)
    assert scale[0, 1] == pytest.approx(8.0) and scale[1, 0] == pytest.approx(8.0)  # f = 1/8
    assert scale[0, 4] == pytest.approx(2.0)  # Nyquist column: f = 1/2
    assert scale[4, 4] == pytest.approx(1 / np.sqrt(0.5))  # f = sqrt(2)/2
    assert scale[7, 0] == pytest.approx(8.0)  # fftfreq wraps: row 7 is f = -1/8
    np.testing.assert_allclose(fourier.frequency_scale(8, 8, decay=2.0), scale**2)
    np.testing.assert_array_equal(fourier.frequency_scale(8, 8, decay=0.0), 1.0)
    wide = fourier.frequency_scale(6, 10)  # non-square: floor 1 / max(H, W), rfft columns
    assert wide.shape == (6, 6) and wide[0, 0] == 10.0 and wide[0, 1] == pytest.approx(10.0)


def test_color_matrix_is_lucids_normalised_by_its_largest_column_norm():
    m = fourier.color_matrix()
    np.testing.assert_allclose(np.linalg.norm(m, axis=0).max(), 1.0)
    nonzero = fourier.COLOR_CORRELATION_SVD_SQRT != 0
    ratio = m[nonzero] / fourier.COLOR_CORRELATION_SVD_SQRT[nonzero]
    assert np.all(m[~nonzero] == 0)
    finite = np.isfinite(ratio)
    np.testing.assert_allclose(ratio[finite], ratio[finite][0])  # one common factor ...
    np.testing.assert_allclose(ratio[finite][0], 1 / np.linalg.norm([0.26, 0.27, 0.27]))  # ... the first column's norm
    np.testing.assert_array_equal(fourier.color_matrix(decorrelate=False), np.eye(3))


def test_initial_spectrum_is_seeded_per_seed_and_filter():
    a = fourier.initial_spectrum(3, 16, 12, seed=0)
    assert a.shape == (2, 3, 16, 7) and a.dtype == np.float32
    np.testing.assert_array_equal(a, fourier.initial_spectrum(3, 16, 12, seed=0))
    assert not np.array_equal(a, fourier.initial_spectrum(4, 16, 12, seed=0))
    assert not np.array_equal(a, fourier.initial_spectrum(3, 16, 12, seed=1))
    expected = np.random.default_rng((0, 3)).normal(0.0, 0.01, (2, 3, 16, 7)).astype(np.float32)
    np.testing.assert_array_equal(a, expected)
    assert 0.008 < a.std() < 0.012
    batch = fourier.initial_spectra([5, 3, 9], 16, 12, seed=0)
    np.testing.assert_array_equal(batch[1], a)  # a filter's start does not depend on its batch
    np.testing.assert_array_equal(fourier.initial_spectra([9], 16, 12)[0], batch[2])


def test_spectrum_to_image_matches_a_hand_computation():
    h = w = 8
    spec = np.zeros((2, 3, h, 5), np.float32)
    spec[0, 0, 0, 0] = 0.5  # the constant term of the first decorrelated component only
    picture = fourier.spectrum_to_image(spec, h, w)
    t = 0.5 * 8.0 / np.sqrt(h * w) / 4.0  # scale 8 at f = 0, orthonormal inverse, divisor 4
    u = fourier.color_matrix()[:, 0] * t
    np.testing.assert_allclose(picture, np.broadcast_to(255 / (1 + np.exp(-u)), (h, w, 3)), rtol=1e-12)
    # a cosine along the columns: one frequency, real part only
    spec = np.zeros((2, 3, h, 5), np.float32)
    spec[0, :, 0, 2] = 1.0
    t = fourier.spectrum_to_image(spec, h, w, decorrelate=False)
    expected_t = 2 * 4.0 * np.cos(2 * np.pi * 2 * np.arange(w) / w) / np.sqrt(h * w) / 4.0  # scale 1/(2/8) = 4
    np.testing.assert_allclose(np.log(t / (255 - t))[0, :, 0], expected_t, atol=1e-12)
    assert np.all(fourier.spectrum_to_image(np.zeros((2, 3, h, 5)), h, w) == 127.5)  # zero spectrum: grey


def test_spectrum_shape_is_checked():
    with pytest.raises(FiltvizError, match="spectra of shape"):
        fourier.spectrum_to_image(np.zeros((2, 3, 8, 4)), 8, 8)


def test_to_uint8_rounds_without_stretching():
    raw = np.array([[[0.2, 127.49, 127.5]], [[254.6, 300.0, -3.0]]], np.float32)
    np.testing.assert_array_equal(fourier.to_uint8(raw), [[[0, 127, 128]], [[255, 255, 0]]])


def test_draws_are_seeded_per_seed_filter_and_step():
    o = FourierOptions()
    d = transforms.draw(0, 3, 7, o)
    assert d == transforms.draw(0, 3, 7, o)
    assert len({transforms.draw(s, f, k, o) for s, f, k in [(0, 3, 7), (1, 3, 7), (0, 4, 7), (0, 3, 8)]}) == 4
    many = [transforms.draw(0, f, k, o) for f in range(5) for k in range(40)]
    assert all(0 <= c <= o.jitter for d in many for c in d.crop1)
    assert all(0 <= c <= o.jitter2 for d in many for c in d.crop2)
    assert all(o.scale[0] <= d.scale <= o.scale[1] and abs(d.angle) <= o.rotate for d in many)
    assert {c for d in many for c in d.crop1} == set(range(o.jitter + 1))  # every offset occurs
    assert max(d.angle for d in many) > 8 and min(d.angle for d in many) < -8


def test_draws_do_not_repeat_the_initial_spectrums_stream():
    """numpy's SeedSequence pads entropy with zeros: rng((s, f, 0)) is rng((s, f)). The draws must not be."""
    o = FourierOptions()
    first = np.random.default_rng((0, 3)).integers(0, o.jitter + 1, size=2)
    same_as_init = np.random.default_rng((0, 3, 0)).integers(0, o.jitter + 1, size=2)
    np.testing.assert_array_equal(first, same_as_init)  # the trap exists ...
    rng = np.random.default_rng((0, 3, transforms.TRANSFORM_STREAM, 0))
    assert transforms.draw(0, 3, 0, o).crop1 == tuple(int(c) for c in rng.integers(0, o.jitter + 1, size=2))
    assert (
        np.random.default_rng((0, 3, transforms.TRANSFORM_STREAM, 0)).random() != np.random.default_rng((0, 3)).random()
    )  # ... and the draws avoid it


def test_affine_composes_pad_crops_zoom_and_rotation():
    o = FourierOptions()
    assert transforms.output_size(128, 128, o) == (140, 140)
    assert transforms.output_size(64, 40, fourier_options({"transforms": False})) == (64, 40)
    plain = transforms.Draw(crop1=(3, 5), scale=1.0, angle=0.0, crop2=(1, 2))
    m = transforms.affine(plain, 128, 128, o)
    np.testing.assert_allclose(m, [[1, 0, 3 + 1 - 12], [0, 1, 5 + 2 - 12]], atol=1e-12)  # a pure shift
    turned = transforms.Draw(crop1=(4, 4), scale=2.0, angle=90.0, crop2=(2, 2))
    m = transforms.affine(turned, 128, 128, o)
    ctr = (128 + 24 - 8 - 1) / 2
    centre_out = ctr - 2  # the output pixel over the middle canvas' centre ...
    np.testing.assert_allclose(m[:, :2] @ [centre_out, centre_out] + m[:, 2], [ctr + 4 - 12] * 2, atol=1e-9)
    np.testing.assert_allclose(m[:, :2], [[0, 0.5], [-0.5, 0]], atol=1e-12)  # ... zoom 2 (half steps), turned 90
    np.testing.assert_array_equal(
        transforms.affine(turned, 8, 8, fourier_options({"transforms": False})), [[1, 0, 0], [0, 1, 0]]
    )
    stack = transforms.affines(0, [3, 1], [0, 5], 32, 32, o)
    assert stack.shape == (2, 2, 2, 3) and stack.dtype == np.float32
    np.testing.assert_array_equal(
        stack[1, 0], transforms.affine(transforms.draw(0, 3, 5, o), 32, 32, o).astype(np.float32)
    )


def test_resample_reference_is_bilinear_with_a_grey_border():
    img = np.arange(4 * 5 * 1, dtype=np.float64).reshape(4, 5, 1) * 10
    np.testing.assert_array_equal(transforms.resample(img, [[1, 0, 0], [0, 1, 0]], 4, 5, 127.5), img)
    shifted = transforms.resample(img, [[1, 0, -1], [0, 1, 2]], 4, 5, 127.5)  # out (r, c) <- img (r - 1, c + 2)
    np.testing.assert_array_equal(shifted[1:, :3], img[:3, 2:])
    assert np.all(shifted[0] == 127.5) and np.all(shifted[:, 3:] == 127.5)
    half = transforms.resample(img, [[1, 0, 0.5], [0, 1, 0.25]], 1, 1, 127.5)  # between 4 pixels
    expected = 0.5 * (0.75 * img[0, 0] + 0.25 * img[0, 1]) + 0.5 * (0.75 * img[1, 0] + 0.25 * img[1, 1])
    np.testing.assert_allclose(half[0, 0], expected)
    edge = transforms.resample(img, [[1, 0, -0.5], [0, 1, 0]], 1, 1, 127.5)  # half in the border
    np.testing.assert_allclose(edge[0, 0], 0.5 * 127.5 + 0.5 * img[0, 0])


def test_methods_resolve_defaults_and_refuse_bad_options():
    assert methods.resolve("pixel", None, None) == (100, 1.0, None)
    steps, lr, o = methods.resolve("fourier", None, None)
    assert (steps, lr) == (methods.FOURIER_STEPS, methods.FOURIER_LR) and o == FourierOptions()
    assert methods.resolve("fourier", 7, 0.2, {"pad": 4, "scale": [1, 1.2]})[2] == FourierOptions(
        pad=4, scale=(1.0, 1.2)
    )
    assert methods.run_params("pixel", None) == {}
    assert methods.run_params("fourier", o)["method"] == "fourier" and methods.run_params("fourier", o)["pad"] == 12
    bad = [
        ("cubist", None, "unknown method 'cubist'; valid: pixel, fourier"),
        ("fourier", {"padding": 3}, "unknown fourier option 'padding'"),
        ("fourier", {"scale": (1.2, 1.0)}, "0 < low <= high"),
        ("fourier", {"scale": 2}, "a (low, high) pair"),
        ("fourier", {"jitter": 2.5}, "whole number of pixels"),
        ("fourier", {"beta2": 1.0}, "lie in [0, 1)"),
        ("fourier", {"init_std": 0}, "> 0"),
        ("fourier", {"transforms": "yes"}, "True or False"),
        ("pixel", {"pad": 3}, "the pixel method takes no method options"),
        ("pixel", FourierOptions(pad=3), "the pixel method takes no method options"),
    ]
    for method, options, message in bad:
        with pytest.raises(FiltvizError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
            methods.resolve(method, None, None, options)
    with pytest.raises(FiltvizError, match="steps must be"):
        methods.resolve("fourier", -1, None)
    with pytest.raises(FiltvizError, match="init applies to the pixel method"):
        methods.check_pixel_only(o, init_given=True, clip=False)
    with pytest.raises(FiltvizError, match="clip applies to the pixel method"):
        methods.check_pixel_only(o, init_given=False, clip=True)
