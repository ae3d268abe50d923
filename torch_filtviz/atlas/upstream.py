"""Each unit's strongest connections to the layer before (as Distill's Circuits pages show them).

For a conv layer fed by another conv layer through activations, pooling, dropout and BatchNorm only, unit
f's connection to input unit c is the kernel slice ``W[f, c, :, :]``: its L2 norm is the ``weight``, the sign
of its sum the ``sign`` (+1 excites, -1 inhibits on average). The 8 largest by weight are the unit's
``upstream``: ``[{"layer", "filter", "weight", "sign"}, ...]``, strongest first (ties: the lower channel).

Which layer feeds which is read from the traced forward pass (:mod:`torch_filtviz.trace`), not from module
order: a walk back from the conv's input passes activation functions (in place or not, module or
functional), pooling, dropout and copies, and stops at the conv that made the value. BatchNorm between
that conv and its activation (ResNet's conv -> bn -> relu) is passed too: the feeding layer's unit is its
pre-activation as the atlas resolves it, the BatchNorm's output, so ``W[f, c]`` weighs exactly that unit's
activation. Anything else gets no list but the reason, ``upstream_note``: the first conv (fed by the
picture), a grouped or depthwise conv (a unit sees only its group), a layer fed through a residual add or a
concatenation (its input mixes several layers' units), through LayerNorm/linear layers (ConvNeXt's
blocks), BatchNorm after the activation (it rescales the input units), or a layer that is not a conv
(linear layers, tokens).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import nn

from torch_filtviz.trace import ACTIVATION_FUNCTIONS, Key, Trace

#: Connections listed per unit.
TOP = 8
#: Functions a walk from a conv's input back to the conv that feeds it may pass (besides activations).
PASSED = frozenset(
    {
        "max_pool2d",
        "avg_pool2d",
        "max_pool2d_with_indices",
        "dropout",
        "dropout2d",
        "feature_alpha_dropout",
        "alpha_dropout",
        "clone",
        "contiguous",
        "to",
        "float",
        "detach",
    }
)
RESIDUAL = frozenset({"add", "add_", "__add__", "__iadd__", "__radd__", "sub", "__sub__"})
CONCAT = frozenset({"cat", "concat", "concatenate", "stack"})
FIRST = "the first conv layer: it is fed by the picture's pixels, not by units"


def _conv_op(trace: Trace, key: Key | None, limit: int = 64):
    """The conv2d call that made ``key``, walking back through activations and channel-preserving steps."""
    for _ in range(limit):
        op = trace.producer(key)
        if op is None:
            return None
        if op.name == "conv2d":
            return op
        if not op.inputs or not (op.name in ACTIVATION_FUNCTIONS or op.name in PASSED or op.name == "batch_norm"):
            return None
        key = op.inputs[0]
    return None


def _layer_conv(model: nn.Module, trace: Trace, path: str):
    """The conv2d call a layer denotes: its own (a Conv2d module) or the one right before it (VGG16's
    Keras names denote the ReLU after each conv)."""
    calls = trace.module_calls(path)
    if not calls:
        return None
    if isinstance(model.get_submodule(path), nn.Conv2d):
        made = calls[0].output
        inner = [op for op in trace.ops if op.kind == "function" and op.name == "conv2d" and op.output == made]
        return inner[0] if inner else None
    return _conv_op(trace, calls[0].output)


def _has_conv_before(trace: Trace, key: Key | None) -> bool:
    """Whether any convolution made ``key`` or a value it was computed from."""
    todo, seen = [key], set()
    while todo:
        k = todo.pop()
        if k in seen:
            continue
        seen.add(k)
        op = trace.producer(k)
        if op is None:
            continue
        if op.name in ("conv2d", "conv1d", "conv3d", "linear"):
            return True
        todo.extend(op.inputs)
    return False


def _feeder(trace: Trace, conv) -> tuple[Any, str | None]:
    """(the conv2d call that feeds ``conv``, None) or (None, why not)."""
    key = conv.inputs[0] if conv.inputs else None
    activated = False
    for _ in range(256):
        op = trace.producer(key)
        if op is None:
            break
        name = op.name
        if name == "conv2d":
            return op, None
        if name in ACTIVATION_FUNCTIONS:
            activated = True
        elif name == "batch_norm":
            if not activated:  # seen walking back before any activation: it comes after the activation
                return None, (
                    "fed through BatchNorm after the activation: it rescales each input unit, so the kernel's "
                    "weights do not rank the units as they act"
                )
        elif name in RESIDUAL:
            if _has_conv_before(trace, key):
                return None, "fed through a residual add: its input mixes the units of several layers"
            break
        elif name in CONCAT:
            return None, "fed through a concatenation: its input channels come from several layers"
        elif name in ("layer_norm", "linear", "group_norm", "permute"):
            return None, f"fed through {name}: not only activations, pooling and BatchNorm"
        elif name not in PASSED:
            if _has_conv_before(trace, key):
                return None, f"fed through {name}, not only activations and pooling"
            break
        key = op.inputs[0] if op.inputs else None
    return None, FIRST


def conv_layers(model: nn.Module) -> dict[str, str]:
    """``{conv module path: the layer name the atlas uses for it}`` (VGG16: ``features.2`` -> ``block1_conv2``)."""
    from torch_filtviz.targets import any_trace, display_path, layer_names, module_path

    trace = any_trace(model)
    names: dict[str, str] = {}
    for name in layer_names(model, "conv"):
        path = module_path(model, name)
        op = _layer_conv(model, trace, path) if path is not None else None
        if op is not None:
            names.setdefault(op.parent, name)
    for path, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            names.setdefault(path, display_path(model, path))
    return names


def connections(weight: np.ndarray, layer: str, filters: Sequence[int], top: int = TOP) -> dict[int, list[dict]]:
    """Each filter's ``top`` strongest inputs from a conv kernel ``weight`` (F, C, kh, kw) whose inputs are the
    units of ``layer``: L2 norm of ``W[f, c]`` as ``weight`` (largest first, ties: lower ``c``), sign of its sum."""
    w = np.asarray(weight, np.float64)
    norms = np.sqrt((w.reshape(w.shape[0], w.shape[1], -1) ** 2).sum(-1))
    sums = w.reshape(w.shape[0], w.shape[1], -1).sum(-1)
    found = {}
    for f in filters:
        order = np.argsort(-norms[int(f)], kind="stable")[: int(top)]
        found[int(f)] = [
            {
                "layer": layer,
                "filter": int(c),
                "weight": float(np.float32(norms[int(f), c])),
                "sign": 1 if sums[int(f), c] >= 0 else -1,
            }
            for c in order
        ]
    return found


def upstream(model: nn.Module, layer: str, filters: Sequence[int], top: int = TOP) -> dict[int, dict[str, Any]]:
    """Per filter of ``layer``: ``{"upstream": [{"layer", "filter", "weight", "sign"}, ...]}`` (its ``top``
    strongest inputs), or ``{"upstream_note": why there are none}``.

    >>> import torch_filtviz as fv
    >>> from torch_filtviz.atlas.upstream import upstream
    >>> model = fv.load_model("vgg16", weights="random")  # doctest: +SKIP
    >>> upstream(model, "block3_conv3", [0])[0]["upstream"][0]["layer"]  # doctest: +SKIP
    'block3_conv2'
    """
    from torch_filtviz.targets import any_trace, module_path

    filters = [int(f) for f in filters]

    def note(text: str) -> dict[int, dict[str, Any]]:
        return {f: {"upstream_note": text} for f in filters}

    path = module_path(model, layer)
    if path is None:
        return note("not a module of the model")
    trace = any_trace(model)
    conv = _layer_conv(model, trace, path)
    if conv is None:
        kind = type(model.get_submodule(path)).__name__
        return note(f"not a conv layer ({kind}): connections are shown for conv layers only")
    module = model.get_submodule(conv.parent)
    if not isinstance(module, nn.Conv2d):
        return note("its convolution is not an nn.Conv2d module")
    if module.groups != 1:
        kind = "depthwise" if module.groups == module.in_channels else f"grouped ({module.groups} groups)"
        return note(f"a {kind} conv: each unit sees only its own group of input channels")
    feeder, why = _feeder(trace, conv)
    if feeder is None:
        return note(why or FIRST)
    source = model.get_submodule(feeder.parent)
    if not isinstance(source, nn.Conv2d) or source.out_channels != module.in_channels:
        return note("its input channels are not the units of one conv layer")
    name = conv_layers(model).get(feeder.parent, feeder.parent)
    weight = module.weight.detach().float().cpu().numpy()
    return {f: {"upstream": found} for f, found in connections(weight, name, filters, top).items()}
