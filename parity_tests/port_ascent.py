"""``python -m parity_tests.port --ascent LAYER:FILTERS``: both frameworks run the ascent on their own model.

The Keras model runs through ``tf_reference.visualize_filters``, the port through
``torch_filtviz.visualize_filters`` (wrapped with ``wrap_model(port, preprocess="none")``: both models
take the pictures in their own input space, 0-255 pixels as the validator's other inputs), from the
same start: the pixel method from one explicit array (``filtviz_core.algorithm.initial_images``),
the fourier method from the same seeded spectra. The torch layer is the module the Keras layer is
mapped to; both resolve ``pre_relu`` to the input of the activation that follows it.

An ascent is chaotic, so the loss histories are judged as the parity suite judges them
(``parity_tests.vgg_parity.FLOOR_RULE`` on the noise floor measured in the same run): the floor is
how far the reference drifts from itself when run again from a start moved by one unit in the last
place per pixel (pixel method; ``vgg_parity.floor_reruns`` reruns) or run eagerly instead of compiled
(fourier method: its start is a seeded spectrum, not an argument). Each filter's TF-vs-torch
divergence must stay within the rule's bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from filtviz_core import algorithm, methods
from filtviz_core.errors import FiltvizError
from parity_tests.checks import Check, check_curves_against_floor
from parity_tests.port_map import LayerPair


@dataclass
class AscentOutcome:
    """The checks, and the curves for the report (per filter: reference, port, floor reruns)."""

    layer: str
    torch_layer: str
    filters: list[int]
    method: str
    steps: int
    size: int
    checks: list[Check]
    tf_losses: np.ndarray  # (F, steps + 1)
    torch_losses: np.ndarray
    floor_losses: list[np.ndarray]  # each (F, steps + 1)
    floor_kind: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "torch_layer": self.torch_layer,
            "filters": self.filters,
            "method": self.method,
            "steps": self.steps,
            "size": self.size,
            "floor": self.floor_kind,
            "tensorflow_losses": self.tf_losses.tolist(),
            "torch_losses": self.torch_losses.tolist(),
            "floor_losses": [f.tolist() for f in self.floor_losses],
        }


def parse_spec(text: str) -> tuple[str, str]:
    """``"LAYER:FILTERS"`` -> (layer, filters text); one line when malformed."""
    layer, sep, filters = str(text).partition(":")
    if not sep or not layer.strip() or not filters.strip():
        raise FiltvizError(f"--ascent {text!r}: expected LAYER:FILTERS, e.g. sep1:0-3")
    return layer.strip(), filters.strip()


def check_layer(spec: str, pairs: list[LayerPair]) -> LayerPair:
    """The pair of ``--ascent``'s layer; one line naming the mapped layers when it is not mapped."""
    layer, _ = parse_spec(spec)
    by_keras = {p.keras: p for p in pairs}
    if layer not in by_keras:
        raise FiltvizError(f"--ascent {spec}: {layer} is not in the layer map; mapped: {', '.join(by_keras)}")
    return by_keras[layer]


def open_input(keras_model: Any) -> Any:
    """The Keras model with its input's height and width left open (same layers and weights), so the
    fourier method's transformed canvas fits; the model itself when they already are."""
    import keras

    shape = tuple(keras_model.inputs[0].shape)
    if len(shape) != 4 or (shape[1] is None and shape[2] is None):
        return keras_model
    config = keras_model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] == "InputLayer":
            layer["config"]["batch_shape"] = [None, None, None, shape[3]]
    try:
        opened = keras.Model.from_config(config)
    except Exception:  # noqa: BLE001 - a model that cannot be rebuilt keeps its fixed size
        return keras_model
    opened.set_weights(keras_model.get_weights())
    return opened


def run_ascent(
    keras_model: Any,
    torch_model: Any,
    pairs: list[LayerPair],
    spec: str,
    *,
    method: str = "pixel",
    steps: int | None = None,
    size: int = 64,
    seed: int = 0,
) -> AscentOutcome:
    """Both ascents and their checks (module docstring)."""
    import tf_reference
    import torch_filtviz
    from parity_tests.vgg_parity import FLOOR_RULE, floor_reruns, perturb_ulp

    layer, filters_text = parse_spec(spec)
    pair = check_layer(spec, pairs)
    if method not in ("pixel", "fourier"):
        raise FiltvizError(f"--method {method!r}: the port's ascent compares pixel or fourier")
    steps, _, _ = methods.resolve(method, steps, None)
    keras_model = open_input(keras_model) if method == "fourier" else keras_model
    keras_model.filtviz_preprocess = "none"
    from tf_reference.keras_model import channel_count, input_channels

    channels = input_channels(keras_model)
    filters = algorithm.parse_filters(filters_text, channel_count(keras_model, layer, "pre_relu"), layer)
    wrapped = torch_filtviz.wrap_model(torch_model, preprocess="none", in_channels=channels, name="port")
    common: dict[str, Any] = {"method": method, "steps": int(steps), "snapshots": ()}

    def tf_run(**kwargs: Any) -> np.ndarray:
        results = tf_reference.visualize_filters(keras_model, layer, filters, **common, **kwargs)
        return np.stack([r.losses for r in results])

    if method == "pixel":
        init = algorithm.initial_images(filters, size, seed, channels)
        tf_losses = tf_run(init=init)
        floor = [tf_run(init=perturb_ulp(init, s)) for s in range(1, floor_reruns(len(filters)) + 1)]
        floor_kind = f"reference rerun from a start moved by 1 ulp per pixel ({len(floor)}x)"
        torch_results = torch_filtviz.visualize_filters(
            wrapped, pair.torch, filters, init=init, progress=False, **common
        )
    else:
        tf_losses = tf_run(size=size, seed=seed)
        floor = [tf_run(size=size, seed=seed, compiled=False)]
        floor_kind = "reference run eagerly instead of compiled"
        torch_results = torch_filtviz.visualize_filters(
            wrapped, pair.torch, filters, size=size, seed=seed, progress=False, **common
        )
    torch_losses = np.asarray(torch_results.losses, np.float64)
    checks = check_curves_against_floor(
        layer, filters, tf_losses, torch_losses, floor, FLOOR_RULE, group="ascent", floor_label=floor_kind
    )
    return AscentOutcome(
        layer,
        pair.torch,
        list(filters),
        method,
        int(steps),
        int(size),
        checks,
        tf_losses,
        torch_losses,
        floor,
        floor_kind,
    )


def plot_curves(outcome: AscentOutcome) -> Any:
    """One panel per filter: the reference's loss history, the port's, and the floor reruns."""
    from matplotlib.figure import Figure

    n = len(outcome.filters)
    fig = Figure(figsize=(3.2 * n, 2.8), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    for i, (ax, f) in enumerate(zip(axes, outcome.filters)):
        ok = all(c.passed for c in outcome.checks if c.name.endswith(f"/{f}/divergence"))
        for k, floor in enumerate(outcome.floor_losses):
            ax.plot(floor[i], color="0.7", lw=1, label="floor rerun (TF)" if k == 0 else None)
        ax.plot(outcome.tf_losses[i], color="C0", lw=1.5, label="tensorflow (reference)")
        ax.plot(outcome.torch_losses[i], color="C1", lw=1, ls="--", label="torch port")
        ax.set_title(f"{outcome.layer} filter {f}: {'ok' if ok else 'DIVERGES'}", fontsize=9)
        ax.set_xlabel("step")
    axes[0].set_ylabel(f"objective ({outcome.method})")
    axes[0].legend(fontsize=7)
    return fig
