"""The quality evaluator (filtviz_bench.spectrum, filtviz_bench.evaluator): each number means what it says."""

import numpy as np
import pytest
import torch

from filtviz_bench import evaluator as ev
from filtviz_bench import spectrum


@pytest.mark.parametrize("beta", [1.0, 2.0, 3.0])
def test_alpha_of_power_law_noise_recovers_its_exponent(beta):
    alphas = [spectrum.spectral_slope(spectrum.power_law_noise(128, beta, np.random.default_rng(i))) for i in range(4)]
    assert abs(np.mean(alphas) - beta) < 0.15, alphas
    # the exported uint8 picture of the same noise gives the same slope
    pics = spectrum.noise_pictures(2, 128, seed=5, beta=beta)
    assert abs(np.mean([spectrum.spectral_slope(p) for p in pics]) - beta) < 0.25


def test_alpha_ignores_colour_brightness_and_contrast():
    x = spectrum.power_law_noise(96, 2.0, np.random.default_rng(0))
    a = spectrum.spectral_slope(x)
    assert spectrum.spectral_slope(3.0 * x + 50.0) == pytest.approx(a, abs=1e-9)
    assert spectrum.spectral_slope(x[..., ::-1]) != pytest.approx(a, abs=1e-6)  # luminance weights differ per channel


def test_high_frequency_share():
    white = spectrum.power_law_noise(128, 0.0, np.random.default_rng(1))
    # white noise: the share of the frequency square outside the 0.25 c/px disc, 1 - pi/16
    assert spectrum.high_frequency_share(white) == pytest.approx(1 - np.pi / 16, abs=0.03)
    assert spectrum.high_frequency_share(spectrum.power_law_noise(128, 2.0, np.random.default_rng(1))) < 0.3
    assert spectrum.high_frequency_share(spectrum.power_law_noise(128, 3.0, np.random.default_rng(1))) < 0.05


def test_flat_pictures_are_flagged():
    grey = np.full((64, 64, 3), 127, np.uint8)
    assert (
        spectrum.is_flat(grey)
        and np.isnan(spectrum.spectral_slope(grey))
        and np.isnan(spectrum.high_frequency_share(grey))
    )
    barely = grey + np.random.default_rng(0).integers(0, 2, grey.shape).astype(np.uint8)  # +-1 grey level
    assert spectrum.is_flat(barely)
    assert not spectrum.is_flat(spectrum.noise_pictures(1, 64, seed=0)[0])


def test_noise_pictures_are_seeded_and_shaped():
    a, b = spectrum.noise_pictures(2, 48, seed=3), spectrum.noise_pictures(3, 48, seed=3)
    assert a.shape == (2, 48, 48, 3) and a.dtype == np.uint8 and np.array_equal(a, b[:2])
    assert 110 < a.mean() < 146 and 30 < a.astype(float).std() < 45
    assert not np.array_equal(a, spectrum.noise_pictures(2, 48, seed=4))


def _ramp(size=48):
    return (torch.arange(size * size * 3, dtype=torch.float32).reshape(1, 3, size, size) * 7) % 251


def test_transform_shift_moves_the_content_by_whole_pixels():
    x = _ramp()
    y = ev.transform(x, np.array([[5.0, -3.0, 1.0, 0.0, 0.0]]))  # dx = 5 right, dy = 3 up
    assert torch.allclose(y[..., 10:40, 10:40], x[..., 13:43, 5:35], atol=1e-3)
    assert torch.allclose(ev.transform(x, np.zeros((1, 5)) + [0, 0, 1, 0, 0]), x, atol=1e-3)  # identity


def test_transform_rotation_and_zoom():
    x = _ramp()
    quarter = ev.transform(x, np.array([[0.0, 0.0, 1.0, 90.0, 0.0]]))
    assert torch.allclose(quarter, torch.rot90(x, -1, (2, 3)), atol=1e-3)
    # zoom 2 about the centre: output pixel (r, c) samples (r + 0.5 - 24) / 2 + 24 - 0.5, half-way between pixels
    big = ev.transform(x, np.array([[0.0, 0.0, 2.0, 0.0, 0.0]]))
    r, c = 30, 20
    src = lambda v: (v + 0.5 - 24) / 2 + 24 - 0.5  # noqa: E731
    rr, cc = src(r), src(c)
    r0, c0 = int(np.floor(rr)), int(np.floor(cc))
    fr, fc = rr - r0, cc - c0
    want = (1 - fr) * ((1 - fc) * x[0, :, r0, c0] + fc * x[0, :, r0, c0 + 1]) + fr * (
        (1 - fc) * x[0, :, r0 + 1, c0] + fc * x[0, :, r0 + 1, c0 + 1]
    )
    assert torch.allclose(big[0, :, r, c], want, atol=1e-3)


def test_blur_keeps_the_mean_and_removes_detail():
    x = ev.as_tensor(spectrum.noise_pictures(2, 64, seed=1, beta=0.0))
    blurred = ev.gaussian_blur(x, np.array([0.0, 1.0]))
    assert torch.equal(blurred[0], x[0])  # sigma 0: untouched
    assert blurred[1].mean().item() == pytest.approx(x[1].mean().item(), rel=1e-3)
    assert blurred[1].std().item() < 0.6 * x[1].std().item()


def test_heldout_draws_are_wider_than_lucents_and_seeded():
    draws = ev.HeldOut().draw(np.random.default_rng(0), 128, k=4000)
    assert np.abs(draws[:, :2]).max() > 12  # Lucent's jitter reaches 7 + 3 px
    assert draws[:, 2].min() < 0.9 and draws[:, 2].max() > 1.1 and np.abs(draws[:, 3]).max() > 10
    assert draws[:, 4].max() > 0.5 and draws[:, 4].min() >= 0
    again = ev.HeldOut().draw(np.random.default_rng(0), 128, k=4000)
    assert np.array_equal(draws, again)


@pytest.fixture(scope="module")
def vgg(weights_file):
    from torch_filtviz import load_vgg16

    return load_vgg16("keras")  # genuine weights: the fixture made sure the verified file is there


def test_all_channel_objectives_are_filter_objective(vgg):
    from torch_filtviz import filter_objective

    x = ev.as_tensor(spectrum.noise_pictures(3, 40, seed=2))
    every = ev.all_channel_objectives(vgg, "block2_conv1", x)
    assert every.shape == (3, 128)
    for f in (0, 77):
        one = filter_objective(vgg, "block2_conv1", [f] * 3, x)
        assert torch.allclose(every[:, f], one, rtol=1e-5, atol=1e-4)


def test_noise_scores_near_zero_and_a_visualization_far_above(vgg):
    """Fresh noise pictures score z ~ 0 against the baseline; the pixel method's pictures score far above,
    and mostly keep their activation when moved at block 1."""
    from torch_filtviz import visualize_filters

    layer, filters = "block1_conv2", [0, 1, 2, 3, 4, 5]
    held = ev.HeldOut(k=3)
    base = ev.noise_baseline(vgg, layer, 32, count=12, heldout=held)
    assert base.robust.shape == (12, 64) and np.all(base.robust_std > 0)
    fresh = spectrum.noise_pictures(len(filters), 32, seed=99)
    z = [s.z for s in ev.score(vgg, layer, filters, fresh, base, heldout=held)]
    assert abs(np.median(z)) < 1.0 and max(abs(v) for v in z) < 5, z
    r = visualize_filters(vgg, layer, filters, steps=20, size=32, progress=False, snapshots=None)
    scores = ev.score(vgg, layer, filters, r.images, base, heldout=held)
    assert min(s.z for s in scores) > 5 and all(s.z_plain > s.z > 0 for s in scores)
    assert all(0 < s.kept < 1.5 for s in scores) and not any(s.flat for s in scores)
    # the same picture scored twice: the held-out draws depend only on (layer, filter)
    again = ev.score(vgg, layer, filters[:2], r.images[:2], base, heldout=held)
    assert [s.robust for s in again] == [s.robust for s in scores[:2]]


def test_score_refuses_what_it_cannot_score(vgg):
    base = ev.noise_baseline(vgg, "block1_conv1", 32, count=2, heldout=ev.HeldOut(k=1))
    with pytest.raises(ValueError, match="uint8"):
        ev.score(vgg, "block1_conv1", [0], np.zeros((1, 32, 32, 3), np.float32), base)
    with pytest.raises(ValueError, match="2 filters for 1 pictures"):
        ev.score(vgg, "block1_conv1", [0, 1], np.zeros((1, 32, 32, 3), np.uint8), base)
