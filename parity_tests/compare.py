"""The reusable comparison core: does a PyTorch port compute what its Keras original computes?

:func:`compare` runs both models on the same numpy inputs and checks the activations of every
mapped layer (max abs diff / max abs activation, and per-channel mean and std). It works for
any pair of models, not only VGG16; ``python -m parity_tests.port`` is its command line.

The core is split by concern, and everything is importable from here as well:

* :mod:`parity_tests.metrics` — numeric metrics (relative differences, cosine, curve divergence);
* :mod:`parity_tests.checks` — :class:`Check`, :class:`Report`, the ``check_*`` functions, fixed
  bounds for deterministic quantities and :class:`FloorRule` for chaotic ones;
* :mod:`parity_tests.runners` — running each framework (both in inference mode).

Input conventions of :func:`compare`: ``inputs`` is one numpy array, NHWC (channels last), float.
The Keras model receives ``keras_preprocess(inputs)`` (NHWC, in the Keras model's own input space);
the torch model receives ``torch_preprocess(inputs)`` transposed to NCHW as a float32 tensor.
Either callable defaults to identity. Torch activations (NCHW) are transposed to NHWC before
comparison; outputs of other ranks (e.g. dense layers, (N, C)) are compared as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from parity_tests.checks import (
    ACTIVATION_RTOL,
    GRAD_MIN_COSINE,
    STAT_RTOL,
    Check,
    CurveBounds,
    FloorRule,
    Report,
    check_activations,
    check_curves,
    check_curves_against_floor,
    check_equal,
    check_first_update,
    check_gradients,
    check_images,
)
from parity_tests.metrics import (
    channel_stat_diffs,
    cosine,
    curve_divergence,
    curve_relative_diff,
    pearson,
    relative_max_diff,
    relative_scalar_diff,
)
from parity_tests.runners import inference_mode, keras_activations, to_nchw, to_nhwc, torch_activations


def compare(
    keras_model: Any,
    torch_model: Any,
    layer_map: Mapping[str, str],
    inputs: np.ndarray,
    *,
    keras_preprocess: Callable[[np.ndarray], np.ndarray] | None = None,
    torch_preprocess: Callable[[np.ndarray], np.ndarray] | None = None,
    rtol: float = ACTIVATION_RTOL,
    stat_rtol: float = STAT_RTOL,
    label: str = "",
    group: str = "activations",
) -> Report:
    """Run both models on the same NHWC ``inputs`` and check every mapped layer.

    ``layer_map``: Keras layer name -> torch submodule path whose output should equal it (e.g.
    ``{"block1_conv1": "features.1"}``: Keras' conv output is after its ReLU). Both models run
    in inference mode; the torch model's modes are left as they were. ``label`` names the input
    in the check names.
    """
    inputs = np.asarray(inputs, np.float32)
    if inputs.ndim != 4:
        raise ValueError(f"inputs must be NHWC (N, H, W, C), got shape {inputs.shape}")
    k_in = keras_preprocess(inputs.copy()) if keras_preprocess else inputs
    t_in = torch_preprocess(inputs.copy()) if torch_preprocess else inputs
    k_acts = keras_activations(keras_model, list(layer_map), k_in)
    t_acts = torch_activations(torch_model, list(layer_map.values()), to_nchw(t_in))
    report = Report()
    for k_name, t_path in layer_map.items():
        name = f"{label}/{k_name}" if label else k_name
        report.extend(
            check_activations(
                name, k_acts[k_name], to_nhwc(t_acts[t_path]), rtol=rtol, stat_rtol=stat_rtol, group=group
            )
        )
    return report


__all__ = [
    "ACTIVATION_RTOL",
    "GRAD_MIN_COSINE",
    "STAT_RTOL",
    "Check",
    "CurveBounds",
    "FloorRule",
    "Report",
    "channel_stat_diffs",
    "check_activations",
    "check_curves",
    "check_curves_against_floor",
    "check_equal",
    "check_first_update",
    "check_gradients",
    "check_images",
    "compare",
    "cosine",
    "curve_divergence",
    "curve_relative_diff",
    "inference_mode",
    "keras_activations",
    "pearson",
    "relative_max_diff",
    "relative_scalar_diff",
    "to_nchw",
    "to_nhwc",
    "torch_activations",
]
