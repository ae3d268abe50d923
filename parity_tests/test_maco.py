"""The maco method (SPEC.md §17): loss histories of tf_reference and torch_filtviz from the same seeded phases
and the same crop and noise draws, with bounds set from the measured round-off floor.

The pieces (picture, crops, magnitude, NAdam) agree to float rounding: tests/test_maco.py. The whole run is as
chaotic as the fourier method's (SPEC.md §15.11: NAdam steers every phase element by its own RMS). The floor,
two runs in ONE framework (block1_conv2, filters 0-3, 32 px, 4 crops, 20 steps; the 2-core development CPU),
measured with tf_reference compiled vs eager and torch_filtviz channels_last vs NCHW:

    pair                      max rel per step   Pearson gap   final loss
    tf compiled vs eager      2.6e-03            1.3e-05       2.9e-03
    torch NHWC vs NCHW        2.7e-03            1.1e-05       3.0e-03
    tf vs torch               6.4e-04            4.9e-07       2.3e-04

The bounds are about 3x the same-framework floor.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

LAYER, FILTERS, SIZE, STEPS, OPTIONS = "block1_conv2", "0-3", 32, 20, {"crops": 4}
MAX_REL, MAX_PEARSON_GAP, FINAL_REL = 1e-2, 5e-5, 1e-2


def test_loss_histories_agree(weights_file):
    import torch_filtviz as fv
    from tf_reference import load_vgg16, visualize_filters

    ours = fv.visualize_filters(
        fv.load_vgg16(weights_file.path),
        LAYER,
        FILTERS,
        method="maco",
        steps=STEPS,
        size=SIZE,
        method_options=OPTIONS,
        progress=False,
        device="cpu",
    ).losses
    theirs = np.stack(
        [
            r.losses
            for r in visualize_filters(
                load_vgg16(weights_file.path),
                LAYER,
                FILTERS,
                method="maco",
                steps=STEPS,
                size=SIZE,
                method_options=OPTIONS,
            )
        ]
    )
    assert ours.shape == theirs.shape == (4, STEPS + 1)
    for i in range(len(ours)):
        scale = np.abs(theirs[i]).max()
        assert np.abs(ours[i] - theirs[i]).max() / scale <= MAX_REL
        assert 1 - np.corrcoef(ours[i], theirs[i])[0, 1] <= MAX_PEARSON_GAP
        assert abs(ours[i, -1] - theirs[i, -1]) / abs(theirs[i, -1]) <= FINAL_REL
        assert theirs[i, -1] > theirs[i, 0]  # it ascends
