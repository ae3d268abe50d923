"""Feature accentuation (SPEC.md §19): the photo's start in each parameterization, the penalty, batch
independence, the API's contract, and both command lines (files written, one-line errors with exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import torch_filtviz as fv
from filtviz_core import accentuate, fourier, maco
from filtviz_core.errors import FiltvizError
from filtviz_core.images import load_image
from filtviz_core.methods import FourierOptions, fourier_options

FAST = dict(size=32, progress=False, device="cpu")
LAYER = "block2_conv1"


@pytest.fixture(scope="module")
def vgg(weights_file):
    return fv.load_vgg16(weights_file.path)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """The sample photo at 32 px, uint8, with one black and one white pixel (outside the sigmoid's reach)."""
    p = load_image(size=32).copy()
    p[0, 0], p[0, 1] = 0, 255
    return p


@pytest.fixture(scope="module")
def photo_file(tmp_path_factory, photo) -> Path:
    path = tmp_path_factory.mktemp("photo") / "photo.png"
    Image.fromarray(photo).save(path)
    return path


def rms(pictures: np.ndarray, photo: np.ndarray) -> np.ndarray:
    d = (np.asarray(pictures, np.float64) - photo) / 255.0
    return np.sqrt((d * d).reshape(len(d), -1).mean(axis=1))


def unit_values(model, filters, pictures: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(np.ascontiguousarray(pictures, np.float32)).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        return fv.filter_objective(model, LAYER, filters, x).double().numpy()


# --- framework-free: the starts ----------------------------------------------------------------------


def test_fourier_start_reproduces_the_photo(photo):
    """The exact inverse of the fourier picture: the photo clipped to [1, 254] comes back to float rounding."""
    wide = np.random.default_rng(0).integers(0, 256, (30, 21, 3)).astype(np.uint8)
    for picture in (photo, wide):
        h, w = picture.shape[:2]
        for options in (FourierOptions(), fourier_options({"decorrelate": False, "decay": 0.5, "divisor": 3.0})):
            spectrum = accentuate.spectrum_from_picture(picture, options)
            assert spectrum.shape == (2, 3, h, w // 2 + 1) and spectrum.dtype == np.float32
            back = fourier.spectrum_to_image(
                spectrum, h, w, decay=options.decay, divisor=options.divisor, decorrelate=options.decorrelate
            )
            clipped = np.clip(picture.astype(np.float64), accentuate.CLIP_LOW, accentuate.CLIP_HIGH)
            assert np.abs(back - clipped).max() <= 1e-3  # far inside the 0.5 level the contract asks
            assert np.abs(back - picture).max() == pytest.approx(1.0, abs=1e-3)  # 0 and 255 moved by the clip only


def test_maco_start_keeps_the_photos_phase_where_the_magnitude_is_largest(photo):
    mag = maco.magnitude(32, 32)
    theta = accentuate.phase_from_picture(photo, mag).astype(np.float64)
    assert theta.shape == mag.shape
    assert abs(theta.mean()) <= 1e-6 and theta.std() == pytest.approx(1.0, abs=1e-6)  # standardization leaves it
    logit = accentuate.logit_picture(photo)
    t = np.einsum("dc,hwc->dhw", np.linalg.inv(fourier.color_matrix(True)), logit)
    phase = np.angle(np.fft.rfft2(t))
    top = np.argsort(-mag.ravel(), kind="stable")[: mag.size // 4]  # a quarter of the entries, the largest
    assert np.abs(theta.ravel()[top] - phase.ravel()[top]).max() <= 1e-6
    start = maco.phase_to_image(theta, mag, 32, 32)
    noise = maco.phase_to_image(maco.initial_phase(0, 32, 32), mag, 32, 32)
    naive = maco.phase_to_image(phase, mag, 32, 32)  # the photo's phase as it is, shrunk by the standardization

    def corr(a):
        return np.corrcoef(a.ravel(), photo.astype(np.float64).ravel())[0, 1]

    assert corr(start) >= 0.7 and corr(start) > corr(naive) + 0.1 and abs(corr(noise)) < 0.3


def test_photo_from_a_file_or_an_array(photo, photo_file):
    assert np.array_equal(accentuate.load_photo(photo_file, 32), photo.astype(np.float32))
    assert np.array_equal(accentuate.load_photo(photo, 32), photo.astype(np.float32))
    big = load_image(size=(48, 64))
    assert np.array_equal(accentuate.load_photo(big, 32), load_image_from_array(big, 32))
    floats = photo.astype(np.float32) * np.float32(0.99) + np.float32(0.25)
    floats[0, 0] = 0.0
    assert np.array_equal(accentuate.load_photo(floats, 32), floats)  # float pixels at the size: kept as they are
    big = np.repeat(np.repeat(photo, 2, 0), 2, 1)
    resized = accentuate.load_photo(big.astype(np.float32), 32)  # float32 planes, resized as the uint8 RGB is
    assert resized.shape == (32, 32, 3) and np.abs(resized - accentuate.load_photo(big, 32)).max() <= 1.0


def load_image_from_array(arr: np.ndarray, size: int) -> np.ndarray:
    from filtviz_core.images import fit_image

    return np.asarray(fit_image(Image.fromarray(arr), (size, size)), np.float32)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((32, 32)), "(H, W, 3) RGB array"),
        (np.full((8, 8, 3), 2.0) * 200, "pixel units in [0, 255]"),
        (np.full((8, 8, 3), np.nan), "NaN"),
        (np.full((8, 8, 3), 0.5), "a [0, 1] image?"),
        ("no/such/photo.jpg", "image not found"),
    ],
)
def test_bad_photos_are_one_line(bad, message):
    with pytest.raises(FiltvizError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        accentuate.load_photo(bad, 32)


def test_strength_checks():
    assert accentuate.check_strength(None) == accentuate.DEFAULT_STRENGTH
    assert accentuate.check_strength(0) == 0.0
    for bad in (-1.0, float("nan"), float("inf"), "10", True):
        with pytest.raises(FiltvizError, match="strength must be a finite number >= 0"):
            accentuate.check_strength(bad)


# --- torch: the API ----------------------------------------------------------------------------------


def test_fourier_accentuation_starts_from_the_photo(vgg, photo):
    res = fv.accentuate(vgg, LAYER, [3, 7], photo, steps=2, snapshots=(0, 2), **FAST)
    assert isinstance(res, fv.FilterResults) and res.method == "fourier" and res.filters == [3, 7]
    clipped = np.clip(photo.astype(np.float64), 1, 254)
    assert np.abs(res.snapshots[0] - clipped).max() <= 0.5  # within half a level of the photo
    assert res.losses.shape == (2, 3) and res.raw.shape == res.images.shape == (2, 32, 32, 3)
    assert np.array_equal(res.images, fourier.to_uint8(res.raw))  # shown as it is, never stretched
    assert res.alpha is None
    record = res.run_record()
    assert record["params"]["init"] == "photo" and record["params"]["photo"] == "array 32x32"
    assert record["params"]["strength"] == accentuate.DEFAULT_STRENGTH and record["method"] == "fourier"


def test_pixel_accentuation_at_strength_0_is_the_pixel_method_from_the_photo(vgg, photo):
    kw = dict(steps=3, snapshots=(), **FAST)
    ours = fv.accentuate(vgg, LAYER, [3, 7], photo, method="pixel", strength=0, **kw)
    plain = fv.visualize_filters(vgg, LAYER, [3, 7], init=np.repeat(photo[None], 2, 0).astype(np.float32), **kw)
    assert np.array_equal(ours.raw, plain.raw) and np.array_equal(ours.losses, plain.losses)


def test_losses_are_the_unit_objective_minus_the_penalty(vgg, photo):
    strength = 20000.0
    res = fv.accentuate(vgg, LAYER, [3, 7], photo, method="pixel", strength=strength, steps=3, snapshots=(), **FAST)
    start = unit_values(vgg, [3, 7], np.repeat(photo[None], 2, 0))
    np.testing.assert_allclose(res.losses[:, 0], start, rtol=1e-5)  # the start is the photo: no penalty
    end = unit_values(vgg, [3, 7], res.raw) - strength * accentuate.distance(res.raw, photo)
    assert np.all(accentuate.distance(res.raw, photo) > 1e-5)  # the penalty is there to see
    np.testing.assert_allclose(res.losses[:, -1], end, rtol=1e-4)


def test_a_large_strength_keeps_the_picture_near_the_photo(vgg, photo):
    kw = dict(steps=8, snapshots=(), **FAST)
    plain = fv.accentuate(vgg, LAYER, [3, 7], photo, strength=0, **kw)
    tied = fv.accentuate(vgg, LAYER, [3, 7], photo, strength=1e8, **kw)
    assert np.all(rms(tied.raw, photo) <= 0.25 * rms(plain.raw, photo))
    base = unit_values(vgg, [3, 7], np.repeat(photo[None], 2, 0))
    assert np.all(unit_values(vgg, [3, 7], plain.raw) - base > unit_values(vgg, [3, 7], tied.raw) - base)


def test_a_filters_picture_does_not_depend_on_its_batch(vgg, photo):
    kw = dict(steps=3, snapshots=(), batch_size=2, **FAST)
    a = fv.accentuate(vgg, LAYER, [3, 7], photo, **kw)
    b = fv.accentuate(vgg, LAYER, [11, 7], photo, **kw)
    assert np.array_equal(a.raw[1], b.raw[1]) and np.array_equal(a.losses[1], b.losses[1])
    assert not np.array_equal(a.raw[0], b.raw[0])


def test_maco_accentuation_starts_from_the_photos_phase(vgg, photo):
    res = fv.accentuate(
        vgg, LAYER, [3], photo, method="maco", steps=2, snapshots=(0,), method_options={"crops": 2}, **FAST
    )
    mag = maco.magnitude(32, 32)
    start = maco.phase_to_image(accentuate.phase_from_picture(photo, mag), mag, 32, 32)
    assert np.abs(res.snapshots[0][0] - start).max() <= 1e-3 * 255
    assert res.alpha is not None and res.alpha.shape == (1, 32, 32)


def test_bad_arguments_are_one_line(vgg, photo):
    with pytest.raises(FiltvizError, match="strength must be"):
        fv.accentuate(vgg, LAYER, [0], photo, strength=-1, steps=1, **FAST)
    with pytest.raises(FiltvizError, match="clip applies to the pixel method"):
        fv.accentuate(vgg, LAYER, [0], photo, clip=True, steps=1, **FAST)
    with pytest.raises(FiltvizError, match="out of range"):
        fv.accentuate(vgg, LAYER, [999], photo, steps=1, **FAST)
    grey = fv.wrap_model(torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU()), preprocess="none")
    with pytest.raises(FiltvizError, match="RGB photo"):
        fv.accentuate(grey, "0", [0], photo, steps=1, **FAST)


# --- both command lines ----------------------------------------------------------------------------


def test_filtviz_accentuate_writes_what_filters_writes(capsys, tmp_path, photo_file, weights_file):
    from torch_filtviz.cli import main

    argv = ["accentuate", photo_file, "block1_conv2", "--filters", "0-1", "--steps", "2", "--size", "32"]
    code = main([str(a) for a in [*argv, "--no-progress", "--strength", "50", "--out", tmp_path]])
    _, err = capsys.readouterr()
    assert code == 0, err
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert written == [
        "block1_conv2_grid.png",
        "block1_conv2_iterations.png",
        "filters/filter_0000.png",
        "filters/filter_0001.png",
        "run.json",
    ]
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["method"] == "fourier" and record["params"]["strength"] == 50.0
    assert record["params"]["init"] == "photo" and record["params"]["photo"] == str(photo_file)
    assert np.array(record["losses"]).shape == (2, 3)


@pytest.mark.parametrize(
    "args, message",
    [
        (["no/such.jpg", "block1_conv2"], "photo not found: no/such.jpg"),
        (["{photo}", "block1_conv2", "--strength", "-1"], "--strength must be a finite number >= 0"),
        (["{photo}", "block1_conv2", "--filters", "999"], "out of range"),
        (["{notimage}", "block1_conv2"], "not a readable image file"),
        (["{photo}"], "the following arguments are required: layer"),
    ],
)
def test_bad_accentuate_input_is_one_line_exit_2(args, message, capsys, tmp_path, photo_file, weights_file):
    from tf_reference.cli import main as tf_main
    from torch_filtviz.cli import main

    notimage = tmp_path / "notes.jpg"
    notimage.write_text("not a picture")
    argv = [a.format(photo=photo_file, notimage=notimage) for a in args]
    out = ["--steps", "1", "--size", "32", "--out", str(tmp_path / "out")]
    for run in (main,) if "out of range" in message else (main, tf_main):  # TF checks the others before loading
        code = run(["accentuate", *argv, *out])
        _, err = capsys.readouterr()
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_tf_reference_accentuate_writes_what_filters_writes(tmp_path, photo_file, weights_file, capsys):
    from tf_reference.cli import main

    argv = ["accentuate", photo_file, "block1_conv2", "--filters", "0-1", "--steps", "2", "--size", "32"]
    code = main([str(a) for a in [*argv, "--out", tmp_path]])
    _, err = capsys.readouterr()
    assert code == 0, err
    assert (tmp_path / "filters" / "filter_0001.png").is_file() and (tmp_path / "block1_conv2_grid.png").is_file()
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["framework"] == "tensorflow" and record["method"] == "fourier"
    assert record["params"]["init"] == "photo" and record["params"]["strength"] == accentuate.DEFAULT_STRENGTH
    assert np.array(record["losses"]).shape == (2, 3)
