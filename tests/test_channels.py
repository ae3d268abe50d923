"""Inputs beyond RGB, torch side and the framework-free rules: a grey (1-channel) and a
4-channel model get pictures of their own channel count through visualize_filters (pixel, fourier, maco),
render and ``filtviz filters``; the count is read from the first convolution or given (and a wrong one is
refused in one line); colours are decorrelated only for 3 channels; C = 3 keeps the canonical draws."""

import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import torch_filtviz as fv
from filtviz_core import algorithm as alg
from filtviz_core import fourier, maco, preprocessing
from filtviz_core.errors import FiltvizError
from filtviz_core.images import channel_grid, displayable
from filtviz_core.methods import FourierOptions
from torch_filtviz import objectives as obj
from torch_filtviz.cli import main
from torch_filtviz.models import with_in_channels

SIZE = 32
FAST = {"size": SIZE, "progress": False}

NETS = """
from torch import nn

def _net(c):
    return nn.Sequential(nn.Conv2d(c, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 6, 3, padding=1), nn.ReLU())

def grey():
    return _net(1)

def four():
    return _net(4)
"""


def net(channels: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(channels, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 6, 3, padding=1), nn.ReLU())


@pytest.fixture(scope="module")
def grey():
    return fv.wrap_model(net(1), "unit")


@pytest.fixture(scope="module")
def four():
    return fv.wrap_model(net(4), "mnist")


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A user's project with greypkg/nets.py (a 1- and a 4-channel factory), as the current directory."""
    pkg = tmp_path / "greypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text(NETS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m == "greypkg" or m.startswith("greypkg.")]:
        del sys.modules[name]


# --- the framework-free rules ---------------------------------------------------------------------------


def test_seeded_starts_follow_one_rule_for_any_channel_count():
    u = np.random.default_rng((5, 7)).uniform(size=(SIZE, SIZE, 3))  # SPEC §2, written out
    assert np.array_equal(alg.initial_image(7, SIZE, 5), (128 + 20 * (u - 0.5)).astype(np.float32))
    for c in (1, 4):
        u = np.random.default_rng((5, 7)).uniform(size=(SIZE, SIZE, c))
        assert np.array_equal(alg.initial_image(7, SIZE, 5, c), (128 + 20 * (u - 0.5)).astype(np.float32))
        spec = np.random.default_rng((5, 7)).normal(0.0, 0.01, (2, c, SIZE, SIZE // 2 + 1)).astype(np.float32)
        assert np.array_equal(fourier.initial_spectrum(7, SIZE, SIZE, 5, channels=c), spec)
        phase = np.random.default_rng((5, 7)).standard_normal((c, SIZE, SIZE // 2 + 1)).astype(np.float32)
        assert np.array_equal(maco.initial_phase(7, SIZE, SIZE, 5, channels=c), phase)
    assert alg.initial_images([0, 1], SIZE, 0, 1).shape == (2, SIZE, SIZE, 1)


def test_colours_are_decorrelated_for_three_channels_only():
    lucid = fourier.COLOR_CORRELATION_SVD_SQRT / np.linalg.norm(fourier.COLOR_CORRELATION_SVD_SQRT, axis=0).max()
    assert np.array_equal(fourier.color_matrix(True, 3), lucid)
    for c in (1, 2, 4):
        assert np.array_equal(fourier.color_matrix(True, c), np.eye(c))
    # a grey spectrum's picture is the sigmoid of its own inverse transform, no colour mixing
    spec = fourier.initial_spectrum(3, 16, 16, channels=1)[None]
    t = np.fft.irfft2((spec[0, 0, 0] + 1j * spec[0, 1, 0]) * fourier.frequency_scale(16, 16), s=(16, 16), norm="ortho")
    expected = 255.0 / (1.0 + np.exp(-t / 4.0))
    np.testing.assert_allclose(fourier.spectrum_to_image(spec, 16, 16)[0, ..., 0], expected, rtol=1e-12)


def test_grey_and_multispectral_pictures_are_shown_as_grey_and_as_a_grid():
    img = np.arange(4 * 4 * 5, dtype=np.uint8).reshape(4, 4, 5)
    grid = channel_grid(img, gap=1)  # 5 channels: 3 columns, 2 rows, white gaps
    assert grid.shape == (2 * 4 + 1, 3 * 4 + 2)
    assert np.array_equal(grid[:4, 5:9], img[..., 1]) and np.array_equal(grid[5:9, 5:9], img[..., 4])
    assert np.all(grid[4] == 255) and np.all(grid[5:, 10:] == 255)  # the gap row and the empty 6th cell
    assert displayable(img[..., :1]).shape == (4, 4) and displayable(img[..., :3]).shape == (4, 4, 3)


def test_preprocessing_names_and_formulas():
    x = np.array([0.0, 51.0, 255.0])
    np.testing.assert_allclose(preprocessing.apply("unit", x), [0.0, 0.2, 1.0])
    np.testing.assert_allclose(preprocessing.apply("symmetric", x), [-1.0, -0.6, 1.0])
    np.testing.assert_allclose(preprocessing.apply("mnist", x), (x / 255 - 0.1307) / 0.3081)
    for kind in ("unit", "symmetric", "mnist"):
        model = fv.wrap_model(nn.Identity(), kind, in_channels=1)
        got = model(torch.tensor(x, dtype=torch.float64).view(1, 1, 1, 3)).flatten().numpy()
        np.testing.assert_allclose(got, preprocessing.apply(kind, x), rtol=1e-12)
        assert model.describe()["preprocess"] == kind
    with pytest.raises(FiltvizError, match=r"^preprocessing 'caffe' is for RGB .* takes 4 channels; choose none, unit"):
        fv.wrap_model(net(4), "caffe")


# --- the count: read, given, refused ---------------------------------------------------------------------


def test_the_channel_count_is_read_from_the_first_convolution_or_given(grey, four):
    assert (grey.in_channels, four.in_channels) == (1, 4)
    assert grey.describe()["in_channels"] == 1 and "in_channels" not in fv.wrap_model(net(3)).describe()
    assert fv.wrap_model(net(1), "unit", in_channels=1).in_channels == 1
    assert fv.wrap_model(nn.Sequential(nn.Flatten(), nn.LazyLinear(4)), "none", in_channels=2).in_channels == 2
    with pytest.raises(
        FiltvizError,
        match=r"^in_channels 3 given, but the model's first convolution \(0\) takes 1 "
        r"channel: give 1 or leave it out$",
    ):
        fv.wrap_model(net(1), "unit", in_channels=3)
    with pytest.raises(FiltvizError, match="takes 4 channels: give 4"):
        with_in_channels(fv.wrap_model(net(4), "unit"), 1)
    with pytest.raises(FiltvizError, match="whole number >= 1"):
        fv.wrap_model(net(1), "unit", in_channels=0)


# --- the methods on C channels ---------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 4])
def test_pixel_and_fourier_pictures_have_the_models_channel_count(grey, four, channels):
    model = grey if channels == 1 else four
    start = fv.visualize_filters(model, "2", "0-2", steps=0, snapshots=(), **FAST)
    assert start.raw.shape == start.images.shape == (3, SIZE, SIZE, channels)
    assert np.array_equal(start.raw, alg.initial_images([0, 1, 2], SIZE, 0, channels))  # the seeded rule
    pixel = fv.visualize_filters(model, "2", "0-2", steps=3, **FAST)
    assert pixel.raw.shape == (3, SIZE, SIZE, channels) and pixel.images.dtype == np.uint8
    assert np.all(pixel.losses[:, -1] > pixel.losses[:, 0])  # the ascent climbs
    four_steps = fv.visualize_filters(model, "2", "0-2", method="fourier", steps=3, **FAST)
    assert four_steps.raw.shape == (3, SIZE, SIZE, channels)
    assert np.all(np.isfinite(four_steps.losses))
    assert not np.array_equal(four_steps.losses[:, 0], four_steps.losses[:, -1])
    first = fv.visualize_filters(model, "2", [1], method="fourier", steps=0, snapshots=(), **FAST)
    spectra = fourier.initial_spectra([1], SIZE, SIZE, 0, FourierOptions().init_std, channels)
    np.testing.assert_allclose(first.raw, fourier.spectrum_to_image(spectra, SIZE, SIZE), atol=1e-3)


def test_render_and_init_on_grey(grey):
    res = fv.render(grey, obj.channel("2", 1) + obj.channel("2", 2), batch=2, method="fourier", steps=2, **FAST)
    assert res.raw.shape == (2, SIZE, SIZE, 1) and res.images.shape == (2, SIZE, SIZE, 1)
    init = np.full((1, SIZE, SIZE, 1), 100.0, np.float32)
    given = fv.visualize_filters(grey, "2", [0], init=init, steps=0, snapshots=(), progress=False)
    assert np.array_equal(given.raw, init)
    with pytest.raises(FiltvizError, match=r"init must be a \(F, H, W, 1\) .* takes 1 input channel\)"):
        fv.visualize_filters(grey, "2", [0], init=np.full((1, SIZE, SIZE, 3), 100.0, np.float32), progress=False)


def test_maco_on_grey_needs_a_magnitude_and_runs_with_grey_photos(grey, tmp_path):
    with pytest.raises(
        FiltvizError,
        match=r"^the maco method needs method_options=\{'magnitude': DIR\} \(a folder of "
        r"photos\) for a 1-channel model",
    ):
        fv.visualize_filters(grey, "2", [0], method="maco", steps=1, **FAST)
    for i in range(3):
        noise = np.random.default_rng(i).integers(0, 256, (SIZE, 40), dtype=np.uint8)
        Image.fromarray(noise, "L").save(tmp_path / f"grey_{i}.png")
    res = fv.visualize_filters(
        grey, "2", "0-1", method="maco", steps=2, method_options={"magnitude": tmp_path, "crops": 2}, **FAST
    )
    assert res.raw.shape == (2, SIZE, SIZE, 1) and res.alpha.shape == (2, SIZE, SIZE)
    photos = [np.asarray(Image.open(tmp_path / f"grey_{i}.png"), np.float64)[:, 4:36] / 255 for i in range(3)]
    expected = np.mean([np.abs(np.fft.rfft2(p)) for p in photos], axis=0)  # centre crops: 32x40 -> 32x32
    np.testing.assert_allclose(maco.magnitude(SIZE, SIZE, tmp_path, channels=1)[0], expected, rtol=1e-5)


def test_maco_on_four_channels_takes_npy_arrays(four, tmp_path):
    with pytest.raises(FiltvizError, match=r"\(a folder of \(H, W, 4\) .npy arrays\) for a 4-channel model"):
        fv.visualize_filters(four, "2", [0], method="maco", steps=1, **FAST)
    with pytest.raises(FiltvizError, match=r"needs \(H, W, 4\) \.npy arrays in"):
        maco.magnitude(SIZE, SIZE, tmp_path, channels=4)
    for i in range(2):
        np.save(tmp_path / f"bands_{i}.npy", np.random.default_rng(i).random((SIZE, SIZE, 4)))
    res = fv.visualize_filters(
        four, "2", [3], method="maco", steps=1, method_options={"magnitude": tmp_path, "crops": 2}, **FAST
    )
    assert res.raw.shape == (1, SIZE, SIZE, 4)


# --- the command line ------------------------------------------------------------------------------------


def _filters(capsys, *argv):
    code = main(
        ["filters", "2", "--filters", "0-1", "--steps", "2", "--size", str(SIZE), "--no-progress"]
        + [str(a) for a in argv]
    )
    out, err = capsys.readouterr()
    return code, out, err


def test_filtviz_filters_on_grey_and_four_channel_models(capsys, project):
    for given in ([], ["--in-channels", "1", "--preprocess", "unit"]):  # a grey model's default: unit
        out = project / f"grey{len(given)}"
        code, _, err = _filters(capsys, "--model", "greypkg.nets:grey", *given, "--out", out)
        assert code == 0, err
        png = Image.open(out / "filters" / "filter_0000.png")
        assert (png.mode, png.size) == ("L", (SIZE, SIZE))  # a grey PNG
        record = json.loads((out / "run.json").read_text())
        assert record["model"]["in_channels"] == 1 and record["model"]["preprocess"] == "unit"
    out = project / "four"
    code, _, err = _filters(
        capsys, "--model", "greypkg.nets:four", "--preprocess", "symmetric", "--method", "fourier", "--out", out
    )
    assert code == 0, err
    png = Image.open(out / "filters" / "filter_0001.png")
    assert (png.mode, png.size) == ("L", (2 * SIZE + 2, 2 * SIZE + 2))  # the 2x2 grid of its 4 channels


def test_filtviz_refuses_a_wrong_count_and_an_rgb_preprocessing_in_one_line(capsys, project):
    code, _, err = _filters(capsys, "--model", "greypkg.nets:grey", "--preprocess", "unit", "--in-channels", "3")
    wanted = "in_channels 3 given, but the model's first convolution (0) takes 1 channel: give 1 or leave it out"
    assert code == 2 and err.strip().splitlines() == [f"filtviz: error: {wanted}"]
    code, _, err = _filters(capsys, "--model", "greypkg.nets:grey", "--preprocess", "imagenet")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "'imagenet' is for RGB" in err and "unit" in err
    code, _, err = _filters(capsys, "--model", "greypkg.nets:grey", "--in-channels", "0")
    assert code == 2 and "whole number >= 1" in err


# --- tf_reference: the same, on Keras models ------------------------------------------------------------


def keras_net(channels: int):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, channels))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv2")(x)
    return keras.Model(inputs, x, name=f"net{channels}")


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keras_nets")
    for c in (1, 4):
        keras_net(c).save(folder / f"net{c}.keras")
    return folder


@pytest.mark.parametrize("channels", [1, 4])
def test_tf_reference_pictures_have_the_models_channel_count(keras_files, channels):
    import tf_reference as tr
    from tf_reference import objectives as tf_obj

    model = tr.load_model(keras_files / f"net{channels}.keras", preprocess="unit")
    start = tr.visualize_filters(model, "conv2", "0-1", steps=0, size=SIZE, snapshots=(), progress=False)
    assert np.array_equal(np.stack([r.raw for r in start]), alg.initial_images([0, 1], SIZE, 0, channels))
    for method in ("pixel", "fourier"):
        results = tr.visualize_filters(model, "conv2", "0-1", method=method, steps=2, size=SIZE, progress=False)
        assert [r.raw.shape for r in results] == [(SIZE, SIZE, channels)] * 2
        assert all(r.image.shape == (SIZE, SIZE, channels) and r.losses[-1] != r.losses[0] for r in results)
    goal = tf_obj.channel("conv2", 1)
    rendered = tr.render(model, goal, batch=2, method="fourier", steps=1, size=SIZE, progress=False)
    assert [r.raw.shape for r in rendered] == [(SIZE, SIZE, channels)] * 2


def test_tf_reference_maco_on_grey(keras_files, tmp_path):
    import tf_reference as tr

    model = tr.load_model(keras_files / "net1.keras", preprocess="unit")
    with pytest.raises(FiltvizError, match=r"^the maco method needs method_options=\{'magnitude': DIR\}"):
        tr.visualize_filters(model, "conv2", [0], method="maco", steps=1, size=SIZE, progress=False)
    for i in range(2):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (SIZE, SIZE), dtype=np.uint8), "L").save(
            tmp_path / f"grey_{i}.png"
        )
    options = {"magnitude": str(tmp_path), "crops": 2}
    (res,) = tr.visualize_filters(
        model, "conv2", [0], method="maco", steps=1, size=SIZE, progress=False, method_options=options
    )
    assert res.raw.shape == (SIZE, SIZE, 1) and res.alpha.shape == (SIZE, SIZE)


def test_tf_reference_filters_command_on_grey_and_four_channel_models(capsys, keras_files, tmp_path):
    from tf_reference.cli import main as tf_main

    def run(*argv):
        code = tf_main(
            ["filters", "conv2", "--filters", "0-1", "--steps", "2", "--size", str(SIZE), "--no-progress"]
            + [str(a) for a in argv]
        )
        return code, capsys.readouterr().err

    for given in ([], ["--in-channels", "1"]):
        out = tmp_path / f"grey{len(given)}"
        code, err = run("--model", keras_files / "net1.keras", "--preprocess", "unit", *given, "--out", out)
        assert code == 0, err
        png = Image.open(out / "filters" / "filter_0000.png")
        assert (png.mode, png.size) == ("L", (SIZE, SIZE))
    code, err = run("--model", keras_files / "net4.keras", "--method", "fourier", "--out", tmp_path / "four")
    assert code == 0, err
    assert Image.open(tmp_path / "four" / "filters" / "filter_0001.png").size == (2 * SIZE + 2, 2 * SIZE + 2)
    code, err = run("--model", keras_files / "net1.keras", "--in-channels", "3", "--out", tmp_path / "x")
    wanted = "in_channels 3 given, but the model's input takes 1 channel: give 1 or leave it out"
    assert code == 2 and err.strip().splitlines()[-1] == f"python -m tf_reference: error: {wanted}"


def test_feature_maps_of_a_grey_model_see_a_photos_luminance(grey):
    from filtviz_core.images import load_image

    photo = load_image(size=SIZE)  # the RGB sample photo
    got = fv.feature_maps(grey, photo, "0")["0"]
    lum = photo.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    with torch.no_grad():
        expected = grey.features[0](torch.tensor(lum / 255.0, dtype=torch.float32)[None, None])
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(FiltvizError, match=r"images must be \(H, W, 1\) or \(N, H, W, 1\) grey \(or RGB\) arrays"):
        fv.feature_maps(grey, np.zeros((SIZE, SIZE, 2)), "0")


def test_filtviz_layers_lists_a_grey_models_convolutions(capsys, project):
    code = main(["layers", "--model", "greypkg.nets:grey", "--preprocess", "unit", "--kind", "conv"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert [line.split()[:3] for line in out.splitlines()[1:3]] == [["0", "Conv2d", "8"], ["2", "Conv2d", "6"]]
    code = main(["summary", "--model", "greypkg.nets:grey", "--preprocess", "unit", "--input-size", "32"])
    out, err = capsys.readouterr()
    assert code == 0 and "Input (C, H, W) = (1, 32, 32)" in out, err
