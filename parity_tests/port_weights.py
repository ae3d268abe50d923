"""Carry a Keras model's weights into a PyTorch port, with each layer kind's layout conversion.

======================  ===================================  =========================================
Keras layer             Keras layout                         torch layout
======================  ===================================  =========================================
Conv2D                  kernel (kh, kw, in/groups, out)      ``Conv2d.weight`` (out, in/groups, kh, kw)
DepthwiseConv2D         kernel (kh, kw, in, multiplier)      ``Conv2d(groups=in).weight``
                                                             (in * multiplier, 1, kh, kw), channel
                                                             ``c * multiplier + m``
SeparableConv2D         depthwise kernel (kh, kw, in, m),    the depthwise conv as above (no bias, or
                        pointwise kernel (1, 1, in * m, out) its bias set to 0) and a 1x1
                                                             ``Conv2d.weight`` (out, in * m, 1, 1)
                                                             holding the bias: one module with the two
                                                             convs, or the two mapped as a list
Conv1D                  kernel (k, in/groups, out)           ``Conv1d.weight`` (out, in/groups, k)
Conv2DTranspose         kernel (kh, kw, out, in)             ``ConvTranspose2d.weight`` (in, out, kh, kw)
Dense                   kernel (in, out)                     ``Linear.weight`` (out, in); after a
                                                             ``Flatten`` of (h, w, c) maps the inputs
                                                             are reordered to torch's (c, h, w)
BatchNormalization      gamma, beta, moving mean/variance    weight, bias, running_mean, running_var
LayerNormalization      gamma, beta                          weight, bias
======================  ===================================  =========================================

Biases are copied as they are. Shapes are checked before anything is written, so a mismatch
leaves the port untouched and says which pair does not fit. BatchNorm's epsilon is a
hyper-parameter, not a weight: it is not carried, and a mismatch is reported (the comparison
will then show it); so is LayerNormalization's.
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


def depthwise_kernel_to_torch(kernel: np.ndarray) -> np.ndarray:
    """(kh, kw, in, multiplier) -> (in * multiplier, 1, kh, kw), output channel ``c * multiplier + m``."""
    kh, kw, cin, mult = kernel.shape
    return np.ascontiguousarray(np.asarray(kernel).transpose(2, 3, 0, 1).reshape(cin * mult, 1, kh, kw))


def torch_tensors(layer: Any, module: Any, kind: str) -> dict[str, np.ndarray]:
    """The torch parameter/buffer values (by attribute name) for one Keras layer."""
    weights = {w.path.rsplit("/", 1)[-1]: np.asarray(w.numpy()) for w in layer.weights}
    out: dict[str, np.ndarray] = {}
    if kind == "conv2d":
        out["weight"] = np.ascontiguousarray(weights["kernel"].transpose(3, 2, 0, 1))
    elif kind == "conv1d":
        out["weight"] = np.ascontiguousarray(weights["kernel"].transpose(2, 1, 0))
    elif kind == "conv2d_transpose":
        out["weight"] = np.ascontiguousarray(weights["kernel"].transpose(3, 2, 0, 1))  # (in, out, kh, kw)
    elif kind == "depthwise":
        out["weight"] = depthwise_kernel_to_torch(weights["kernel"])
    elif kind == "separable":
        out["depthwise.weight"] = depthwise_kernel_to_torch(weights["depthwise_kernel"])
        out["pointwise.weight"] = np.ascontiguousarray(weights["pointwise_kernel"].transpose(3, 2, 0, 1))
        if "bias" in weights:
            out["pointwise.bias"] = weights["bias"]
        return out
    elif kind == "layernorm":
        n = int(layer.gamma.shape[0]) if getattr(layer, "gamma", None) is not None else int(weights["beta"].shape[0])
        out["weight"] = weights.get("gamma", np.ones(n, np.float32))
        out["bias"] = weights.get("beta", np.zeros(n, np.float32))
        return out
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
            f"--transfer-weights: Keras layer {layer.name!r} is a {type(layer).__name__}; supported: Conv1D, "
            "Conv2D, Conv2DTranspose, DepthwiseConv2D, SeparableConv2D, Dense, BatchNormalization, LayerNormalization"
        )
    if kind != "batchnorm" and "bias" in weights:
        out["bias"] = weights["bias"]
    return out


def _targets(torch_model: Any, module: Any, p: LayerPair) -> dict[str, Any]:
    """The torch modules a pair's values go to: ``depthwise``/``pointwise`` for a SeparableConv2D."""
    if p.keras_kind != "separable":
        return {"": module}
    if not p.torch_parts:
        raise FiltvizError(
            f"--transfer-weights: Keras {p.keras} is a SeparableConv2D; map it to a module holding a depthwise "
            "and a 1x1 conv, or to the list [depthwise, pointwise]"
        )
    dw, pw = (torch_model.get_submodule(x) for x in p.torch_parts)
    return {"depthwise": dw, "pointwise": pw}


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
        targets = _targets(torch_model, module, p)
        if p.keras_kind == "separable" and getattr(targets["depthwise"], "bias", None) is not None:
            values["depthwise.bias"] = np.zeros(targets["depthwise"].out_channels, np.float32)  # Keras: none
        for name, value in values.items():
            owner, _, attr = name.rpartition(".")
            target = getattr(targets[owner] if owner else module, attr, None)
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
        norms = ("batchnorm", "layernorm", "separable")
        if p.keras_kind not in norms and "bias" not in values and getattr(module, "bias", None) is not None:
            raise FiltvizError(
                f"--transfer-weights: Keras {p.keras} has no bias but torch {p.torch} does (build it with bias=False)"
            )
        plan.append(([targets[n.rpartition(".")[0]] if "." in n else module for n in values], values))
        note = ""
        if p.keras_kind in ("batchnorm", "layernorm") and abs(float(layer.epsilon) - float(module.eps)) > 0:
            note = f" (epsilon differs: Keras {layer.epsilon:g}, torch {module.eps:g}; not carried)"
        if "depthwise.bias" in values:
            note = " (the depthwise conv's bias set to 0: Keras' SeparableConv2D has one bias, after the 1x1 conv)"
        if p.keras_kind == "dense" and _flatten_source_shape(layer) is not None:
            note = " (inputs reordered from Keras' (h, w, c) flattening to torch's (c, h, w))"
        lines.append(f"  {p.keras} -> {p.torch}: {', '.join(sorted(values))}{note}")
    with torch.no_grad():
        for owners, values in plan:
            for owner, (name, value) in zip(owners, values.items()):
                target = getattr(owner, name.rpartition(".")[2])
                target.copy_(torch.from_numpy(np.ascontiguousarray(value, np.float32)).to(target.device, target.dtype))
    return lines
