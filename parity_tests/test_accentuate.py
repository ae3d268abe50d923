"""Feature accentuation (SPEC.md §19): tf_reference.accentuate and torch_filtviz.accentuate from the same photo.

* the start: both frameworks' picture of the start parameters (snapshot 0) agree within 1e-6 of 255 for the
  fourier and pixel methods (the same numpy start, ``filtviz_core.accentuate.start``, through §15.2) and
  1e-5 for maco (its standardizations), and the fourier start is the photo clipped to [1, 254];
* the loss histories (unit objective minus the penalty) with the fourier method's bounds
  (``parity_tests.fourier_parity.bounds_for``: per step on block1_conv1, where the objective is linear in
  the picture; by trend on block2_conv1), the pixel method's per-step block-1 bounds on block1_conv1, and
  the maco method's bounds of ``parity_tests/test_maco.py``;
* a planted torch bug (the penalty 1 % too strong) makes the block1_conv1 checks fail.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pytest

from filtviz_core import accentuate as core
from filtviz_core.images import load_image
from parity_tests.checks import Report
from parity_tests.compare import pearson
from parity_tests.fourier_parity import PER_STEP, FourierRun, ascent_checks

pytest.importorskip("tensorflow")

SIZE = 64
STRENGTH = 300.0  # the penalty matters on block 1-2's scale (their objectives are tens to hundreds)
MACO_MAX_REL, MACO_PEARSON_GAP = 1e-2, 5e-5  # parity_tests/test_maco.py's bounds


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return load_image(size=SIZE)


def run_pair(keras_vgg, torch_vgg, photo, layer, filters, *, steps, method="fourier", **kw):
    import torch_filtviz as fv
    from tf_reference.accentuate import accentuate as tf_accentuate

    snaps = (0, 10, steps)
    ref = tf_accentuate(keras_vgg, layer, filters, photo, method=method, steps=steps, size=SIZE, snapshots=snaps, **kw)
    other = fv.accentuate(
        torch_vgg, layer, filters, photo, method=method, steps=steps, size=SIZE, snapshots=snaps, progress=False,
        device="cpu", **kw,
    )  # fmt: skip
    tf_run = FourierRun(
        "tensorflow",
        layer,
        list(filters),
        np.stack([r.losses for r in ref]),
        np.stack([r.raw for r in ref]),
        {k: np.stack([r.snapshots[k] for r in ref]) for k in sorted(ref[0].snapshots)},
        [bool(r.dead) for r in ref],
        0.0,
    )
    torch_run = FourierRun(
        "torch",
        layer,
        list(filters),
        np.asarray(other.losses, np.float64),
        np.asarray(other.raw),
        {int(k): np.asarray(v) for k, v in other.snapshots.items()},
        [bool(d) for d in other.dead],
        0.0,
    )
    return tf_run, torch_run


def test_fourier_start_and_linear_layer_agree_per_step(keras_vgg, torch_vgg, photo):
    ref, other = run_pair(keras_vgg, torch_vgg, photo, "block1_conv1", [0, 5], steps=30, strength=STRENGTH)
    report = Report(ascent_checks(ref, other, PER_STEP))
    assert report.passed, report.summary()
    assert np.abs(ref.snapshots[0] - np.clip(photo.astype(np.float64), 1, 254)).max() <= 0.5
    assert np.all(ref.losses[:, -1] > ref.losses[:, 0]), "the accentuation must raise the objective"


def test_fourier_loss_histories_agree_on_block2(keras_vgg, torch_vgg, photo):
    ref, other = run_pair(keras_vgg, torch_vgg, photo, "block2_conv1", [0, 1], steps=20, strength=STRENGTH)
    report = Report(ascent_checks(ref, other))
    assert report.passed, report.summary()


def test_pixel_start_and_linear_layer_agree_per_step(keras_vgg, torch_vgg, photo):
    ref, other = run_pair(keras_vgg, torch_vgg, photo, "block1_conv1", [0, 5], steps=20, method="pixel", strength=1e5)
    assert np.array_equal(ref.snapshots[0][0], photo.astype(np.float32))  # the photo itself, in both
    report = Report(ascent_checks(ref, other, PER_STEP))
    assert report.passed, report.summary()


def test_maco_start_and_loss_histories_agree(keras_vgg, torch_vgg, photo):
    ref, other = run_pair(
        keras_vgg, torch_vgg, photo, "block1_conv2", [0, 1], steps=20, method="maco", strength=STRENGTH,
        method_options={"crops": 4},
    )  # fmt: skip
    assert np.abs(ref.snapshots[0] - other.snapshots[0]).max() <= 1e-5 * 255
    for r, o in zip(ref.losses, other.losses):
        assert np.max(np.abs(r - o) / np.maximum(np.abs(r), 1e-12)) <= MACO_MAX_REL
        assert 1.0 - pearson(r, o) <= MACO_PEARSON_GAP


@contextmanager
def penalty_one_percent_too_strong():
    from torch_filtviz.accentuate import Tether

    original = Tether.distance
    Tether.distance = lambda self, picture: 1.01 * original(self, picture)
    try:
        yield
    finally:
        Tether.distance = original


def test_a_penalty_one_percent_off_is_caught(keras_vgg, torch_vgg, photo):
    with penalty_one_percent_too_strong():
        ref, other = run_pair(keras_vgg, torch_vgg, photo, "block1_conv1", [0, 5], steps=30, strength=STRENGTH)
    report = Report(ascent_checks(ref, other, PER_STEP))
    assert not report.passed
    assert core.DEFAULT_STRENGTH > 0  # the planted bug reaches the default too: the penalty is always on
