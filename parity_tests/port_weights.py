"""Carry a Keras model's weights into a PyTorch port, with each layer kind's layout conversion.

======================  ===================================  =========================================
Keras layer             Keras layout                         torch layout
======================  ===================================  =========================================
Conv2D                  kernel (kh, kw, in/groups, out)      ``Conv2d.weight`` (out, in/groups, kh, kw)
DepthwiseConv2D         kernel (kh, kw, in, multiplier)      ``Conv2d(groups=in).weight``
                                                             (in * multiplier, 1, kh, kw), channel
                                                             ``c * multiplier + m``
Dense                   kernel (in, out)                     ``Linear.weight`` (out, in); after a
                                                             ``Flatten`` of (h, w, c) maps the inputs
                                                             are reordered to torch's (c, h, w)
BatchNormalization      gamma, beta, moving mean/variance    weight, bias, running_mean, running_var
======================  ===================================  =========================================

Biases are copied as they are. Shapes are checked before anything is written, so a mismatch
leaves the port untouched and says which pair does not fit. BatchNorm's epsilon is a
hyper-parameter, not a weight: it is not carried, and a mismatch is reported (the comparison
will then show it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from filtviz_core.errors import FiltvizError
from parity_tests.port_map import LayerPair


def _flatten_source_shape(layer: Any) -> tuple[int, int, int] | None:
    """(h, w, c) when a Dense layer's input is a Flatten of channels-last maps, else None."""
    try:
        history = layer.input._keras_history
    except (AttributeError, ValueError):
        return None
    source = getattr(history, "operation", None)
    if type(source).__name__ != "Flatten":
        return None
    shape = tuple(source.input.shape)
    if len(shape) != 4 or any(d is None for d in shape[1:]):
        return None
    return int(shape[1]), int(shape[2]), int(shape[3])


def dense_kernel_to_torch(kernel: np.ndarray, flattened_from: tuple[int, int, int] | None = None) -> np.ndarray:
    """(in, out) -> (out, in); rows reordered from Keras' (h, w, c) flattening to torch's (c, h, w)."""
    kernel = np.asarray(kernel)
    if flattened_from is not None:
        h, w, c = flattened_from
        kernel = kernel.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1)
    return np.ascontiguousarray(kernel.T)


def torch_tensors(layer: Any, module: Any, kind: str) -> dict[str, np.ndarray]:
    """The torch parameter/buffer values (by attribute name) for one Keras layer."""
    weights = {w.path.rsplit("/", 1)[-1]: np.asarray(w.numpy()) for w in layer.weights}
    out: dict[str, np.ndarray] = {}
    if kind == "conv2d":
        out["weight"] = np.ascontiguousarray(weights["kernel"].transpose(3, 2, 0, 1))
    elif kind == "depthwise":
        kernel = weights["kernel"]  # (kh, kw, in, multiplier)
        kh, kw, cin, mult = kernel.shape
        out["weight"] = np.ascontiguousarray(kernel.transpose(2, 3, 0, 1).reshape(cin * mult, 1, kh, kw))
    elif kind == "dense":
        out["weight"] = dense_kernel_to_torch(weights["kernel"], _flatten_source_shape(layer))
    elif kind == "batchnorm":
        n = weights["moving_mean"].shape[0]
        out["weight"] = weights.get("gamma", np.ones(n, np.float32))
        out["bias"] = weights.get("beta", np.zeros(n, np.float32))
        out["running_mean"] = weights["moving_mean"]
        out["running_var"] = weights["moving_variance"]
    else:
        raise FiltvizError(
            f"--transfer-weights: Keras layer {layer.name!r} is a {type(layer).__name__}; "
            "supported: Conv2D, DepthwiseConv2D, Dense, BatchNormalization"
        )
    if kind != "batchnorm" and "bias" in weights:
        out["bias"] = weights["bias"]
    return out


def transfer_weights(keras_model: Any, torch_model: Any, pairs: list[LayerPair]) -> list[str]:
    """Copy every mapped Keras layer's weights into its torch module (layouts converted).

    Returns one line per pair saying what was carried (and any BatchNorm epsilon mismatch).
    Every shape is checked first; a mismatch raises FiltvizError before anything is written.
    """
    import torch

    plan: list[tuple[Any, dict[str, np.ndarray]]] = []
    lines: list[str] = []
    for p in pairs:
        layer, module = keras_model.get_layer(p.keras), torch_model.get_submodule(p.torch)
        if not layer.weights:
            continue  # a pool or activation mapped for comparison: nothing to carry
        if p.keras_kind != p.torch_kind:
            raise FiltvizError(
                f"--transfer-weights: Keras {p.keras} ({p.keras_kind}) is mapped to torch {p.torch} ({p.torch_kind})"
            )
        values = torch_tensors(layer, module, p.keras_kind)
        for name, value in values.items():
            target = getattr(module, name, None)
            if target is None:
                raise FiltvizError(
                    f"--transfer-weights: torch {p.torch} has no {name} for Keras {p.keras}'s "
                    f"{'bias' if name == 'bias' else name} (built with bias=False?)"
                )
            if tuple(target.shape) != value.shape:
                raise FiltvizError(
                    f"--transfer-weights: Keras {p.keras} gives {name} {value.shape}, torch {p.torch}."
                    f"{name} is {tuple(target.shape)}"
                )
        if p.keras_kind != "batchnorm" and "bias" not in values and getattr(module, "bias", None) is not None:
            raise FiltvizError(
                f"--transfer-weights: Keras {p.keras} has no bias but torch {p.torch} does (build it with bias=False)"
            )
        plan.append((module, values))
        note = ""
        if p.keras_kind == "batchnorm" and abs(float(layer.epsilon) - float(module.eps)) > 0:
            note = f" (epsilon differs: Keras {layer.epsilon:g}, torch {module.eps:g}; not carried)"
        if p.keras_kind == "dense" and _flatten_source_shape(layer) is not None:
            note = " (inputs reordered from Keras' (h, w, c) flattening to torch's (c, h, w))"
        lines.append(f"  {p.keras} -> {p.torch}: {', '.join(sorted(values))}{note}")
    with torch.no_grad():
        for module, values in plan:
            for name, value in values.items():
                target = getattr(module, name)
                target.copy_(torch.from_numpy(np.ascontiguousarray(value, np.float32)).to(target.device, target.dtype))
    return lines
