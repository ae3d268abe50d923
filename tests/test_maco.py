"""The maco method (SPEC.md §17): its pieces against the numpy reference and against Xplique 2.0.2's own code,
torch against TensorFlow, batch independence, the transparency, the one-line errors and both command lines."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

import torch_filtviz as fv
from filtviz_core import algorithm, fourier, maco, methods
from filtviz_core.errors import FiltvizError
from filtviz_core.methods import MacoOptions, maco_options
from torch_filtviz.optimizers import NAdam
from torch_filtviz.parameterizations import MacoImage
from torch_filtviz.transforms import crop_views

tf = pytest.importorskip("tensorflow")

FAST = {"size": 32, "progress": False, "device": "cpu"}
TOL = 1e-5 * 255  # 1e-5 of the picture's range


@pytest.fixture(scope="module")
def vgg(weights_file):
    return fv.load_vgg16(weights_file.path)


@pytest.fixture(scope="module")
def tf_vgg(weights_file):
    from tf_reference import load_vgg16

    return load_vgg16(weights_file.path)


@pytest.fixture(scope="module")
def xplique_preconditioning():
    """Xplique's own ``preconditioning`` module, run from the installed wheel. The package's ``__init__``
    imports dependencies that a ``--no-deps`` install lacks, so only the two packages' paths are set up
    (their ``__init__`` is not run) and that one file is imported; sys.modules is restored afterwards."""
    try:
        dist = importlib.metadata.distribution("xplique")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"xplique is not installed: {maco.XPLIQUE_INSTALL}")
    root = Path(str(dist.locate_file("xplique")))
    saved = {k: v for k, v in sys.modules.items() if k == "xplique" or k.startswith("xplique.")}
    for name, path in (("xplique", root), ("xplique.features_visualizations", root / "features_visualizations")):
        pkg = types.ModuleType(name)
        pkg.__path__ = [str(path)]
        sys.modules[name] = pkg
    try:
        yield importlib.import_module("xplique.features_visualizations.preconditioning")
    finally:
        for k in [k for k in sys.modules if k == "xplique" or k.startswith("xplique.")]:
            del sys.modules[k]
        sys.modules.update(saved)


# --- the magnitude -----------------------------------------------------------------------------------


def test_spectrum_is_located_in_the_wheel_and_pinned():
    path = maco.spectrum_path()
    assert path.name == "spectrum_decorrelated.npy" and "site-packages" in str(path)
    assert maco.imagenet_spectrum().shape == (3, 512, 257)
    assert "xplique" not in sys.modules or isinstance(sys.modules["xplique"], types.ModuleType)


def test_magnitude_is_resized_as_xplique_resizes_it(xplique_preconditioning):
    for h, w in ((64, 64), (48, 37)):
        theirs, _ = xplique_preconditioning.init_maco_buffer((h, w))
        ours = maco.magnitude(h, w)
        assert ours.shape == tuple(theirs.shape) == (3, h, w // 2 + 1)
        assert np.abs(ours - theirs.numpy()).max() <= 1e-6 * np.abs(ours).max()


def test_missing_wheel_is_one_line_with_the_pip_command(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(maco.importlib.metadata, "distribution", missing)
    with pytest.raises(FiltvizError, match=r"pip install --no-deps xplique==2\.0\.2") as info:
        maco.magnitude(32, 32)
    assert "\n" not in str(info.value)


# --- the picture ---------------------------------------------------------------------------------------


def test_picture_numpy_torch_tf_and_xplique_agree(xplique_preconditioning):
    from tf_reference.maco import phase_to_image

    h = w = 48
    mag = maco.magnitude(h, w)
    phase = maco.initial_phases([0, (5, 2, 1)], h, w, seed=3)
    ref = maco.phase_to_image(phase, mag, h, w)
    got_torch = MacoImage(mag, h, w, torch.device("cpu"))(torch.from_numpy(phase)).numpy()
    got_tf = phase_to_image(tf.constant(phase), tf.constant(mag), h, w).numpy()
    theirs = np.stack([xplique_preconditioning.maco_image_parametrization(mag, p, (0.0, 255.0)).numpy() for p in phase])
    assert ref.shape == got_torch.shape == got_tf.shape == theirs.shape == (2, h, w, 3)
    for got in (got_torch, got_tf, theirs):
        assert np.abs(got - ref).max() <= TOL
    # Xplique's colour matrix is Lucid's divided by its largest column norm, as filtviz_core.fourier's
    theirs_matrix = xplique_preconditioning.recorrelate_colors(tf.eye(3)).numpy()
    assert np.abs(theirs_matrix - fourier.color_matrix(True).T).max() < 1e-7


def test_phase_start_is_seeded_by_the_key():
    got = maco.initial_phase((4, 2, 1), 16, 16, seed=7)
    want = np.random.default_rng((7, 4, 2, 1)).standard_normal((3, 16, 9)).astype(np.float32)
    np.testing.assert_array_equal(got, want)


# --- crops and noise -----------------------------------------------------------------------------------


def test_crops_numpy_torch_tf_and_crop_and_resize_agree():
    from tf_reference.maco import crop_views as tf_crop_views

    h = w = 40
    options = maco_options({"crops": 5})
    pictures = np.random.default_rng(1).uniform(0, 255, (2, h, w, 3)).astype(np.float32)
    keys = [3, (1, 2, 0)]
    d = maco.step_views(11, keys, 2, 6, h, w, options)
    noise = d.noise()
    assert d.rows.shape == (2, 5, 4, h) and noise.shape == (2, 5, h, w, 3)
    ref = np.stack([maco.apply_crops(pictures[i], d.rows[i], d.cols[i], noise[i], 127.5) for i in range(2)])
    got_torch = crop_views(
        torch.from_numpy(pictures), *(torch.from_numpy(a) for a in (d.rows, d.cols, noise)), 127.5
    ).numpy()
    got_tf = tf_crop_views(
        tf.constant(pictures), tf.constant(d.rows), tf.constant(d.cols), tf.constant(noise), 127.5
    ).numpy()
    assert np.abs(got_torch - ref).max() <= TOL and np.abs(got_tf - ref).max() <= TOL
    # without the noise, the crops are tf.image.crop_and_resize's (Xplique's), outside = fill
    quiet = maco_options({"crops": 5, "noise": 0.0})
    for i, key in enumerate(keys):
        v = maco.draw_views(11, key, 2, 6, h, w, quiet)
        rng = np.random.default_rng(algorithm.seed_entropy(11, key, maco.MACO_STREAM, 2))
        boxes = maco.boxes(rng, 5, maco.box_size(2, 6, 0.5, 0.05), 0.15, 0.05).astype(np.float32)
        theirs = tf.image.crop_and_resize(
            pictures[i : i + 1], boxes, np.zeros(5, np.int32), (h, w), extrapolation_value=127.5
        ).numpy()
        assert np.all(v.noise() == 0)
        assert np.abs(maco.apply_crops(pictures[i], v.rows, v.cols, v.noise(), 127.5) - theirs).max() <= TOL


def test_crop_draws_follow_xplique():
    assert [round(maco.box_size(k, 4, 0.5, 0.05), 6) for k in range(5)] == [0.5, 0.35, 0.2, 0.05, 0.05]
    boxes = maco.boxes(np.random.default_rng(0), 20000, 0.3, 0.15, 0.05)
    centre, side = (boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2] - boxes[:, 0]
    assert abs(centre.mean() - 0.5) < 0.01 and abs(centre.std() - 0.15) < 0.01
    assert side.min() >= 0.05 - 1e-12 and side.max() <= 1.0 and abs(side.mean() - 0.3) < 0.01
    noise = maco.draw_views(0, 0, 0, 4, 32, 32, MacoOptions()).noise()
    sigma = 0.08 * 127.5  # Gaussian sigma plus uniform of width sigma: std sigma * sqrt(1 + 1/12)
    assert abs(noise.std() / (sigma * np.sqrt(1 + 1 / 12)) - 1) < 0.02


def test_device_noise_is_the_numpy_hash_and_white():
    """The accelerator's noise (torch, evaluated here on CPU tensors: the same ops on any device) equals the
    numpy reference within float32 rounding of log/cos, has the noise's std, and no correlation between
    neighbouring values, channels or elements."""
    from torch_filtviz.transforms import noise_field

    d = maco.step_views(5, [0, (3, 1, 0)], 1, 4, 64, 64, MacoOptions(crops=8))
    ref = maco.noise_field(d.noise_keys, d.noise_count, d.sigma)
    got = noise_field(torch.from_numpy(d.noise_keys), d.noise_count, d.sigma).numpy()
    assert ref.shape == got.shape == (2, 8 * 64 * 64 * 3)
    assert np.abs(got - ref).max() <= 1e-5 * 255
    assert abs(ref.std() / (d.sigma * np.sqrt(1 + 1 / 12)) - 1) < 0.01 and abs(ref.mean()) < 0.01 * d.sigma
    for lag in (1, 3, 64 * 3):  # the next value, the same pixel's next channel's neighbour, the next row
        assert abs(np.corrcoef(ref[0, :-lag], ref[0, lag:])[0, 1]) < 0.01
    assert abs(np.corrcoef(ref[0], ref[1])[0, 1]) < 0.01
    u = maco.unit_interval(maco.hash32(np.arange(200_000, dtype=np.int64), np.int64(7)))
    assert u.min() > 0 and u.max() < 1 and np.histogram(u, 20, (0, 1))[0].min() > 0.97 * 10_000


# --- NAdam -------------------------------------------------------------------------------------------------


def test_nadam_is_keras_nadam_ascending():
    import keras

    from tf_reference.method_parts import NAdam as TfNAdam

    rng = np.random.default_rng(2)
    start = rng.normal(size=(2, 3, 4, 3)).astype(np.float32)
    grads = [rng.normal(size=start.shape).astype(np.float32) * s for s in (1.0, 0.1, 3.0, 0.5)]
    var = keras.Variable(start)
    opt = keras.optimizers.Nadam(1.0)
    ours = torch.from_numpy(start.copy())
    step = NAdam(ours, 1.0)
    tf_opt = TfNAdam(1.0, MacoOptions())
    p, state = tf.constant(start), tf_opt.state(tf.constant(start))
    frozen = torch.zeros((2, 1, 1, 1), dtype=torch.bool)
    for k, g in enumerate(grads):
        opt.apply_gradients([(tf.constant(-g), var)])  # Xplique descends on -gradient
        step.step(ours, torch.from_numpy(g), frozen)
        p, state = tf_opt.update(p, tf.constant(g), state, tf_opt.constants(k))
        scale = np.abs(var.numpy()).max()
        assert np.abs(ours.numpy() - var.numpy()).max() <= 1e-5 * scale
        assert np.abs(p.numpy() - ours.numpy()).max() <= 1e-6 * scale


# --- runs ---------------------------------------------------------------------------------------------------


def test_defaults_come_from_the_registry():
    entry = methods.get("maco")
    assert (entry.steps, entry.lr, entry.options) == (256, 1.0, MacoOptions)
    assert MacoOptions().crops == 32 and MacoOptions().eps == 1e-7
    assert methods.resolve("maco", None, None, {"crops": 4})[2].crops == 4
    with pytest.raises(FiltvizError, match="unknown maco option 'pad'"):
        methods.resolve("maco", None, None, {"pad": 3})


def test_batched_equals_one_at_a_time_and_alpha(vgg):
    opts = {"crops": 3}
    both = fv.visualize_filters(vgg, "block1_conv2", "0-1", method="maco", steps=2, method_options=opts, **FAST)
    one = fv.visualize_filters(vgg, "block1_conv2", [1], method="maco", steps=2, method_options=opts, **FAST)
    assert np.abs(both.raw[1] - one.raw[0]).max() <= 1e-4 and np.allclose(both.losses[1], one.losses[0], rtol=1e-5)
    assert both.alpha.shape == (2, 32, 32) and both.alpha.dtype == np.float32
    assert both.alpha.min() >= 0 and np.allclose(both.alpha.max(axis=(1, 2)), 1.0)
    assert both.params["method"] == "maco" and both.params["crops"] == 3 and both.params["seen_size"] == [32, 32]
    start = maco.phase_to_image(maco.initial_phase(0, 32, 32), maco.magnitude(32, 32), 32, 32)
    assert np.abs(both.snapshots[0][0] - start).max() <= TOL if 0 in both.snapshots else True
    pixel = fv.visualize_filters(vgg, "block1_conv2", [0], steps=1, **FAST)
    assert pixel.alpha is None


def test_tensorflow_and_torch_runs_agree(vgg, tf_vgg):
    from tf_reference import visualize_filters as tf_visualize

    opts = {"crops": 3}
    ours = fv.visualize_filters(
        vgg, "block1_conv2", "0-1", method="maco", steps=2, snapshots=[0, 2], method_options=opts, **FAST
    )
    theirs = tf_visualize(
        tf_vgg, "block1_conv2", "0-1", method="maco", steps=2, size=32, snapshots=[0, 2], method_options=opts
    )
    for i, r in enumerate(theirs):
        assert np.abs(r.snapshots[0] - ours.snapshots[0][i]).max() <= TOL  # the same start
        assert np.allclose(r.losses, ours.losses[i], rtol=1e-3)
        assert r.alpha.shape == (32, 32) and np.abs(r.alpha - ours.alpha[i]).max() < 1e-2


def test_render_and_diversity(vgg):
    from torch_filtviz import objectives as obj

    res = fv.render(
        vgg, obj.channel("block1_conv2", 3), batch=2, method="maco", steps=1, method_options={"crops": 2}, **FAST
    )
    assert res.images.shape == (2, 32, 32, 3) and res.alpha.shape == (2, 32, 32)
    div = fv.visualize_filters(
        vgg, "block1_conv2", [0], method="maco", steps=1, diversity=2, method_options={"crops": 2}, **FAST
    )
    assert div.raw.shape == (2, 32, 32, 3) and not np.allclose(div.raw[0], div.raw[1])


def test_one_line_errors(vgg, tmp_path):
    gray = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU())
    with pytest.raises(FiltvizError, match=r"method_options=\{'magnitude': DIR\}.*1-channel") as info:
        fv.visualize_filters(gray, "0", [0], method="maco", steps=1, **FAST)
    assert "\n" not in str(info.value)
    with pytest.raises(FiltvizError, match="init applies to the pixel method"):
        fv.visualize_filters(vgg, "block1_conv2", [0], method="maco", init=np.zeros((1, 32, 32, 3), np.float32))
    with pytest.raises(FiltvizError, match="crops must be a whole number"):
        maco_options({"crops": 0})
    with pytest.raises(FiltvizError, match="magnitude must be a folder"):
        maco_options({"magnitude": str(tmp_path / "nope")})


def test_magnitude_from_photos(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(tmp_path / f"p{i}.png")
    mag = maco.magnitude(32, 32, str(tmp_path))
    assert mag.shape == (3, 32, 17) and mag.dtype == np.float32 and np.all(mag >= 0)


# --- command lines ------------------------------------------------------------------------------------------


def test_filtviz_cli_writes_pictures_and_alpha(tmp_path, capsys, weights_file, monkeypatch):
    from torch_filtviz import models
    from torch_filtviz.cli import main

    real = models.load_vgg16
    monkeypatch.setattr(models, "load_vgg16", lambda weights="keras", **kw: real(weights_file.path, **kw))
    code = main(
        [
            "filters",
            "block1_conv2",
            "--filters",
            "0-1",
            "--method",
            "maco",
            "--steps",
            "3",
            "--size",
            "48",
            "--no-progress",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0, capsys.readouterr().err
    names = sorted(p.name for p in (tmp_path / "filters").iterdir())
    assert names == ["filter_0000.png", "filter_0000_alpha.png", "filter_0001.png", "filter_0001_alpha.png"]
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["method"] == "maco" and record["params"]["crops"] == 32

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(maco.importlib.metadata, "distribution", missing)
    capsys.readouterr()
    code = main(
        [
            "filters",
            "block1_conv2",
            "--filters",
            "0",
            "--method",
            "maco",
            "--steps",
            "1",
            "--size",
            "32",
            "--no-progress",
            "--out",
            str(tmp_path / "again"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "pip install --no-deps xplique==2.0.2" in err


def test_tf_reference_cli_writes_pictures_and_alpha(tmp_path, weights_file):
    from tf_reference.cli import main

    assert (
        main(
            [
                "filters",
                "block1_conv2",
                "--filters",
                "0-1",
                "--method",
                "maco",
                "--steps",
                "3",
                "--size",
                "48",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    names = sorted(p.name for p in (tmp_path / "filters").iterdir())
    assert names == ["filter_0000.png", "filter_0000_alpha.png", "filter_0001.png", "filter_0001_alpha.png"]
