"""tf_reference's fourier method (SPEC.md §15): results, record, figures, and the pixel method's options refused."""

from __future__ import annotations

import numpy as np
import pytest

from filtviz_core import fourier, methods
from filtviz_core.errors import FiltvizError
from tf_reference import load_vgg16, plot_iterations, run_record, visualize_filter, visualize_filters


@pytest.fixture(scope="module")
def model(weights_file):
    return load_vgg16(weights_file.path)


def test_fourier_result(model):
    r = visualize_filter(model, "block1_conv2", 3, method="fourier", steps=4, size=32, snapshots=[0, 4])
    assert r.method == "fourier" and not r.dead and r.raw.shape == (32, 32, 3) and r.raw.dtype == np.float32
    np.testing.assert_array_equal(r.image, fourier.to_uint8(r.raw))
    assert r.losses.shape == (5,) and r.losses[-1] > r.losses[0]
    np.testing.assert_array_equal(r.snapshots[4], r.raw)
    start = fourier.spectrum_to_image(fourier.initial_spectrum(3, 32, 32), 32, 32)
    assert np.abs(r.snapshots[0] - start).max() < 1e-4  # the seeded spectrum of (seed 0, filter 3)
    assert r.params["method"] == "fourier" and r.params["lr"] == methods.FOURIER_LR
    assert r.params["seen_size"] == [44, 44] and r.params["jitter"] == 8 and r.params["compiled"] is True
    record = run_record(model, [r])
    assert record["method"] == "fourier" and record["params"]["scale"] == [0.9, 1.1]
    shown = plot_iterations([r]).axes[0].images[0].get_array()
    np.testing.assert_array_equal(np.asarray(shown), fourier.to_uint8(r.snapshots[0]))


def test_fourier_options_and_refusals(model):
    r = visualize_filters(
        model, "block1_conv1", "0-1", method="fourier", steps=2, size=32, method_options={"transforms": False}
    )
    assert [x.params["seen_size"] for x in r] == [[32, 32], [32, 32]]
    with pytest.raises(FiltvizError, match="init applies to the pixel method"):
        visualize_filter(model, "block1_conv1", 0, method="fourier", init=np.zeros((32, 32, 3), np.float32))
    with pytest.raises(FiltvizError, match="clip applies to the pixel method"):
        visualize_filters(model, "block1_conv1", "0", method="fourier", clip=True)
    with pytest.raises(FiltvizError, match="unknown fourier option 'blur'"):
        visualize_filters(model, "block1_conv1", "0", method="fourier", method_options={"blur": 1})
    with pytest.raises(FiltvizError, match="shows the network 12 px"):
        visualize_filters(
            model, "block5_conv1", "0", method="fourier", size=16, method_options={"pad": 0, "jitter": 2, "jitter2": 2}
        )
